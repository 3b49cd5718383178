import { verifySync } from '@node-rs/argon2';
const h = '$argon2id$v=19$m=19456,t=2,p=1$637hRiRqILECeDD3a/vXmg$FSAl2BHKnxfM2FUUul+6cSHVCZJBwSTUWaeith8i/K4';
verifySync(h, 'x');
const t0 = performance.now(); const c0 = process.cpuUsage();
for (let i = 0; i < 100; i++) verifySync(h, 'VUs0l31y2aXMuX5B5ZCRwt-u');
const c = process.cpuUsage(c0);
console.log(`${process.env.TAG ?? ''} wall ${((performance.now() - t0) / 100).toFixed(2)} ms/verify, user ${(c.user / 100000).toFixed(2)} sys ${(c.system / 100000).toFixed(2)} ms`);
