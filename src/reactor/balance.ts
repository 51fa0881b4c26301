// Pure: how many partitions a daemon should own and which to give up or
// try to take, given who is alive (membership slots) and who owns what.
// Deterministic, so every daemon computes the same split: the daemon of
// rank r among M members owns floor(P/M) partitions, one more if r < P % M.
// Each prefers its "home" partitions (p % M == r), so daemons rarely race
// for the same ones and a rebalance moves as little as it can.

export interface BalanceInput {
  partitions: number;
  /** membership slots alive, any order; must contain mySlot */
  members: readonly number[];
  mySlot: number;
  owned: ReadonlySet<number>;
  /** partitions held by any daemon, this one included */
  held: ReadonlySet<number>;
}

export interface BalancePlan {
  target: number;
  release: number[];
  /** free partitions to try, best first; take until the target is reached */
  candidates: number[];
}

export function targetShare(partitions: number, members: readonly number[], mySlot: number): number {
  const sorted = [...new Set(members)].sort((a, b) => a - b);
  const m = sorted.length;
  const rank = sorted.indexOf(mySlot);
  if (m === 0 || rank < 0) return 0;
  return Math.floor(partitions / m) + (rank < partitions % m ? 1 : 0);
}

export function planRebalance(i: BalanceInput): BalancePlan {
  const sorted = [...new Set(i.members)].sort((a, b) => a - b);
  const m = Math.max(1, sorted.length);
  const rank = Math.max(0, sorted.indexOf(i.mySlot));
  const target = targetShare(i.partitions, sorted, i.mySlot);
  const isHome = (p: number) => p % m === rank;
  const release: number[] = [];
  if (i.owned.size > target) {
    // give up foreign partitions first, highest numbers first
    const byPreference = [...i.owned].sort((a, b) => Number(isHome(a)) - Number(isHome(b)) || b - a);
    release.push(...byPreference.slice(0, i.owned.size - target));
  }
  const candidates: number[] = [];
  if (i.owned.size < target) {
    for (let p = 0; p < i.partitions; p++) if (!i.held.has(p) && isHome(p)) candidates.push(p);
    for (let p = 0; p < i.partitions; p++) if (!i.held.has(p) && !isHome(p)) candidates.push(p);
  }
  return { target, release, candidates };
}
