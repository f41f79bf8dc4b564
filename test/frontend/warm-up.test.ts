import { warmUp, WARM_UP_KEYS } from "../../src/frontend/warm-up";

test("the warm-up runs whole rounds of real requests on scratch replicas and reports them", async () => {
  const report = await warmUp();
  // One round: a put to every key, overwrites, 33 reads, a Txn, a prefix delete (which checks it found every key).
  const perRound = 2 * WARM_UP_KEYS + 33 + 1 + 1;
  expect(report.requests).toBeGreaterThanOrEqual(perRound);
  expect(report.requests % perRound).toBe(0);
  expect(report.ms).toBeGreaterThan(0);
});
