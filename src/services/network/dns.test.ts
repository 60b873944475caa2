import test from 'ava';
import * as packet from 'dns-packet';
import { NetworkDns } from './dns.js';

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
