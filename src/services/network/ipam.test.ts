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

test('IPv6: parse and print (RFC 5952), subnets, pools, allocation', async (t) => {
  const { ip6ToBig, bigToIp6, parseSubnet6, subnet6String, pools6, pickSubnet6, allocate6, contains6 } = await import('./ipam.js');
  t.is(bigToIp6(ip6ToBig('FD00:0:0:0:0:0:0:1')), 'fd00::1');
  t.is(bigToIp6(ip6ToBig('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
  t.is(bigToIp6(ip6ToBig('::')), '::');
  t.is(bigToIp6(ip6ToBig('::ffff:10.0.0.1')), '::ffff:a00:1');
  t.is(bigToIp6(ip6ToBig('1:2:3:4:5:6:7:8')), '1:2:3:4:5:6:7:8');
  t.throws(() => ip6ToBig('1::2::3'), { message: /invalid IP/ });
  t.throws(() => ip6ToBig('1:2:3'), { message: /invalid IP/ });
  t.throws(() => ip6ToBig('12345::'), { message: /invalid IP/ });
  t.is(subnet6String(parseSubnet6('fd00:1:2:3:4::9/64')), 'fd00:1:2:3::/64');
  t.throws(() => parseSubnet6('fd00::/129'), { message: /invalid CIDR/ });
  const pools = pools6('abcdef0123');
  t.is(subnet6String(pools[0]!), 'fdab:cdef:123::/64');
  t.is(subnet6String(pickSubnet6(pools, [parseSubnet6('fdab:cdef:123::/64')])), 'fdab:cdef:123:1::/64');
  t.is(subnet6String(pools6('x', [{ base: 'fd11::/56', size: 64 }, { base: '10.0.0.0/8', size: 24 }])[1]!), 'fd11:0:0:1::/64');
  const s = parseSubnet6('fd00:9::/64');
  t.is(bigToIp6(allocate6(s, new Set([ip6ToBig('fd00:9::1')]))), 'fd00:9::2');
  t.is(bigToIp6(allocate6(s, new Set(), parseSubnet6('fd00:9::100/120'))), 'fd00:9::100');
  t.true(contains6(s, ip6ToBig('fd00:9::ffff')));
  t.false(contains6(s, ip6ToBig('fd00:a::1')));
  t.throws(() => allocate6(parseSubnet6('fd00::/127'), new Set([ip6ToBig('fd00::1')])), { message: /no available IPv6/ });
});
