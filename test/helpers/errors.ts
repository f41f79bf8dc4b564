import { MergekvError } from "../../src/errors";

/** The MergekvError code `run` throws (failing the test on any other error), or undefined if it returns. */
export function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(MergekvError);
    return (e as MergekvError).code;
  }
}
