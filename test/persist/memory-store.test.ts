import { MemoryStore } from "../../src/persist/memory-store";
import { runStoreContract } from "./store.contract";

runStoreContract("MemoryStore", async () => {
  const store = new MemoryStore();
  await store.open();
  return {
    store,
    reopen: async () => {
      await store.close();
      await store.open();
      return store;
    },
    dispose: () => store.close(),
  };
});
