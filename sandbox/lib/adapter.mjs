// In-memory oidc-provider adapter (one Map per model name) that, unlike the bundled LRU adapter,
// can be enumerated: the admin endpoints need "all access tokens of client X".

const now = () => Date.now();

function live(store, id) {
  const entry = store.get(id);
  if (!entry) return undefined;
  if (entry.exp !== undefined && entry.exp <= now()) {
    store.delete(id);
    return undefined;
  }
  return entry;
}

// Each call returns an adapter class with its own storage (one per sandbox server instance).
export function makeMemoryAdapter() {
const stores = new Map();
function storeFor(name) {
  if (!stores.has(name)) stores.set(name, new Map());
  return stores.get(name);
}

return class MemoryAdapter {
  constructor(name) {
    this.name = name;
    this.store = storeFor(name);
  }

  async upsert(id, payload, expiresIn) {
    this.store.set(id, {
      payload: structuredClone(payload),
      exp: expiresIn ? now() + expiresIn * 1000 : undefined,
    });
  }

  async find(id) {
    const e = live(this.store, id);
    return e ? structuredClone(e.payload) : undefined;
  }

  async findByUid(uid) {
    for (const [id, e] of this.store) {
      if (e.payload.uid === uid && live(this.store, id)) return structuredClone(e.payload);
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [id, e] of this.store) {
      if (e.payload.userCode === userCode && live(this.store, id)) return structuredClone(e.payload);
    }
    return undefined;
  }

  async consume(id) {
    const e = live(this.store, id);
    if (e) e.payload.consumed = Math.floor(now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const store of stores.values()) {
      for (const [id, e] of store) {
        if (e.payload.grantId === grantId) store.delete(id);
      }
    }
  }

  // --- sandbox extensions (not part of the oidc-provider adapter interface) ---

  // Delete every live entry of this model whose payload matches `pred`; returns the count.
  static destroyWhere(name, pred) {
    const store = storeFor(name);
    let n = 0;
    for (const [id, e] of store) {
      if (pred(e.payload)) {
        store.delete(id);
        n += 1;
      }
    }
    return n;
  }

  static entries(name) {
    const store = storeFor(name);
    return [...store.keys()].map((id) => live(store, id)).filter(Boolean).map((e) => e.payload);
  }

  static clearAll() {
    stores.clear();
  }
};
}
