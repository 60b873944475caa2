import test from 'ava';
import { rules } from './firewall.js';

test('rules: isolation between bridges, icc, internal networks, masquerade, DNAT for published ports', (t) => {
  const r = rules([
    { bridge: 'berth0', subnet: '172.17.0.0/16', internal: false, icc: true, masquerade: true },
    { bridge: 'br-a', subnet: '172.18.0.0/16', internal: true, icc: false, masquerade: true },
  ], [{ bridge: 'berth0', proto: 'tcp', hostIp: '', hostPort: 8080, containerIp: '172.17.0.2', containerPort: 80 }]);
  const lines = r.split('\n');
  t.true(lines.includes('-A BERTH-FORWARD -i berth0 -o br-a -j DROP'));
  t.true(lines.includes('-A BERTH-FORWARD -i br-a -o berth0 -j DROP'));
  t.true(lines.includes('-A BERTH-FORWARD -i berth0 -o berth0 -j ACCEPT'));
  t.true(lines.includes('-A BERTH-FORWARD -i br-a -o br-a -j DROP'));
  t.true(lines.includes('-A BERTH-FORWARD -i br-a ! -o br-a -j DROP'));
  t.true(lines.includes('-A BERTH-POSTROUTING -s 172.17.0.0/16 ! -o berth0 -j MASQUERADE'));
  t.false(r.includes('-s 172.18.0.0/16'));
  t.true(lines.includes('-A BERTH-DNAT ! -i berth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80'));
  t.is(lines.filter((l) => l === 'COMMIT').length, 2);
});

test('rules for IPv6: only networks with an IPv6 subnet, their masquerade, DNAT to [address]:port', (t) => {
  const nets = [
    { bridge: 'br-v6', subnet: '172.18.0.0/16', subnet6: 'fd42:1::/64', internal: false, icc: true, masquerade: true },
    { bridge: 'br-v4', subnet: '172.19.0.0/16', internal: false, icc: true, masquerade: true },
  ];
  const ports = [
    { bridge: 'br-v6', proto: 'tcp' as const, hostIp: '', hostPort: 8080, containerIp: '172.18.0.2', containerIp6: 'fd42:1::2', containerPort: 80 },
    { bridge: 'br-v6', proto: 'tcp' as const, hostIp: '127.0.0.1', hostPort: 8081, containerIp: '172.18.0.2', containerIp6: 'fd42:1::2', containerPort: 81 },
  ];
  const lines = rules(nets, ports, '', 6).split('\n');
  t.true(lines.includes('-A BERTH-POSTROUTING -s fd42:1::/64 ! -o br-v6 -j MASQUERADE'));
  t.true(lines.includes('-A BERTH-FORWARD -i br-v6 -o br-v6 -j ACCEPT'));
  t.false(lines.some((l) => l.includes('br-v4')));
  t.true(lines.includes('-A BERTH-FORWARD -d fd42:1::2/128 ! -i br-v6 -o br-v6 -p tcp -m tcp --dport 80 -j ACCEPT'));
  t.true(lines.includes('-A BERTH-DNAT ! -i br-v6 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd42:1::2]:80'));
  t.false(lines.some((l) => l.includes('8081')));
  const v4 = rules(nets, ports, '', 4);
  t.false(v4.includes('fd42'));
  t.true(v4.includes('--dport 8081 -j DNAT --to-destination 172.18.0.2:81'));
});
