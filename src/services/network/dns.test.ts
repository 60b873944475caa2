import test from 'ava';
import * as packet from 'dns-packet';
import { NetworkDns, ip6Arpa } from './dns.js';

const query = (name: string, type: string) => packet.encode({ type: 'query', id: 7, flags: packet.RECURSION_DESIRED, questions: [{ type, name }] } as packet.Packet);

test('names, aliases, round robin, PTR, NXDOMAIN for unknown bare names', async (t) => {
  const dns = new NetworkDns('127.0.0.1', []);
  dns.setRecords([
    { names: ['web1', 'web'], ip: '10.0.0.2' },
    { names: ['web2', 'web'], ip: '10.0.0.3' },
  ]);
  const a = packet.decode((await dns.answer(query('web1', 'A')))!);
  t.deepEqual(a.answers!.map((x: any) => x.data), ['10.0.0.2']);
  const first = packet.decode((await dns.answer(query('web', 'A')))!).answers!.map((x: any) => x.data);
  const second = packet.decode((await dns.answer(query('web', 'A')))!).answers!.map((x: any) => x.data);
  t.deepEqual([...first].sort(), ['10.0.0.2', '10.0.0.3']);
  t.notDeepEqual(first, second);
  const ptr = packet.decode((await dns.answer(query('3.0.0.10.in-addr.arpa', 'PTR')))!);
  t.is((ptr.answers![0] as any).data, 'web2');
  const aaaa = packet.decode((await dns.answer(query('web1', 'AAAA')))!);
  t.is((aaaa as any).rcode, 'NOERROR');
  t.deepEqual(aaaa.answers, []);
  const nx = packet.decode((await dns.answer(query('nosuch', 'A')))!);
  t.is((nx as any).rcode, 'NXDOMAIN');
  t.is(await dns.answer(Buffer.from('garbage')), null);
});

test('AAAA records for IPv6 addresses, in rotating order; PTR under ip6.arpa', async (t) => {
  const dns = new NetworkDns('127.0.0.1', []);
  dns.setRecords([
    { names: ['six1', 'six'], ip: '10.0.0.2', ip6: 'fd42:1::2' },
    { names: ['six2', 'six'], ip: '10.0.0.3', ip6: 'fd42:1::3' },
    { names: ['four'], ip: '10.0.0.4' },
  ]);
  const one = packet.decode((await dns.answer(query('six1', 'AAAA')))!);
  t.deepEqual(one.answers!.map((x: any) => [x.type, x.data]), [['AAAA', 'fd42:1::2']]);
  const first = packet.decode((await dns.answer(query('six', 'AAAA')))!).answers!.map((x: any) => x.data);
  const second = packet.decode((await dns.answer(query('six', 'AAAA')))!).answers!.map((x: any) => x.data);
  t.deepEqual([...first].sort(), ['fd42:1::2', 'fd42:1::3']);
  t.notDeepEqual(first, second);
  const none = packet.decode((await dns.answer(query('four', 'AAAA')))!);
  t.is((none as any).rcode, 'NOERROR');
  t.deepEqual(none.answers, []);
  const rev = '3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.2.4.d.f.ip6.arpa';
  t.is(ip6Arpa('fd42:1::3'), rev);
  const ptr = packet.decode((await dns.answer(query(rev, 'PTR')))!);
  t.is((ptr.answers![0] as any).data, 'six2');
});
