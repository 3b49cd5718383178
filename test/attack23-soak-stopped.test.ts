// Regression: a soak interval with wrong answers (the upstream killed mid-soak: 97,917 of
// 117,127 responses >= 400, measured) threw out of runSoak, so the intervals before it, their
// memory and CPU figures, were lost with the whole report. The soak must stop there and report
// what it had, saying why it stopped.
import t from 'tap';
import { renderSoak } from '../bench/soak-render.js';
import { fakeSoak, loadResult } from './helpers/fake-soak.js';

t.test('a soak stopped by wrong answers keeps the intervals before it', async (t) => {
  const answers = [loadResult(), loadResult(), loadResult({ errorResponses: 900 })];
  const soak = await fakeSoak(
    t,
    ['--soak', '1', '--soak-interval', '20', '--warmup', '0'],
    async () => answers.shift() ?? loadResult(),
  );
  t.equal(soak.samples.length, 2, 'the two good intervals are kept');
  t.match(soak.stoppedBy, /900 of 1000 responses had status >= 400/);
  t.equal(soak.summary?.endP99Ms, 2, 'the summary covers the intervals it has');
  t.match(renderSoak(soak).join('\n'), /the soak stopped after 40 of 60 s: .*900 of 1000/);
});
