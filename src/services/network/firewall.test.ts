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
