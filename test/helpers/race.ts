/**
 * A D1 binding that lets another writer in just before a chosen `batch()`: the first call with at
 * least `minStatements` statements runs `interleave` first (once). A writer's big batch is its
 * write, so this puts a concurrent change between its read and its write.
 */
export function interleaveBeforeWrite(
  db: D1Database,
  minStatements: number,
  interleave: (db: D1Database) => Promise<unknown>,
): { db: D1Database; count: () => number } {
  let done = 0;
  const racing = new Proxy(db, {
    get(target, prop) {
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          if (done === 0 && statements.length >= minStatements) {
            done++;
            await interleave(target);
          }
          return target.batch(statements);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: racing, count: () => done };
}
