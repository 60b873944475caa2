import test from 'ava';
import { allocate, defaultPools, intToIp, ipToInt, macFor, parseSubnet, pickSubnet, poolsFrom, subnetString } from './ipam.js';

test('addresses and subnets round-trip; host bits are cleared', (t) => {
  t.is(intToIp(ipToInt('172.17.0.2')), '172.17.0.2');
  t.is(subnetString(parseSubnet('10.1.2.3/8')), '10.0.0.0/8');
  t.throws(() => parseSubnet('10.0.0.0/33'), { message: /invalid CIDR/ });
  t.throws(() => ipToInt('300.1.1.1'), { message: /invalid IP/ });
});

test('pools skip taken subnets and host routes', (t) => {
  const taken = [parseSubnet('172.17.0.0/16'), parseSubnet('172.16.0.0/12')];
  t.is(subnetString(pickSubnet(defaultPools(), taken)), '192.168.0.0/20');
  t.is(subnetString(pickSubnet(defaultPools(), [parseSubnet('172.17.0.0/16')])), '172.18.0.0/16');
  t.deepEqual(poolsFrom([{ base: '10.10.0.0/16', size: 24 }]).slice(0, 2).map(subnetString), ['10.10.0.0/24', '10.10.1.0/24']);
});

test('allocation: first free host address, within an ip-range; MAC from the address', (t) => {
  const s = parseSubnet('172.18.0.0/16');
  const used = new Set([ipToInt('172.18.0.1')]);
  t.is(intToIp(allocate(s, used)), '172.18.0.2');
  t.is(intToIp(allocate(s, used, parseSubnet('172.18.5.0/24'))), '172.18.5.0');
  const tiny = parseSubnet('10.0.0.0/30');
  t.is(intToIp(allocate(tiny, new Set([ipToInt('10.0.0.1')]))), '10.0.0.2');
  t.throws(() => allocate(tiny, new Set([ipToInt('10.0.0.1'), ipToInt('10.0.0.2')])), { message: /no available IPv4/ });
  t.is(macFor(ipToInt('172.17.0.2')), '02:42:ac:11:00:02');
});
