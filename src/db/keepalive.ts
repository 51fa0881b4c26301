// The TCP keepalive of the sessions whose life carries meaning (the
// partition, watch and LISTEN connections): their locks, and the claims
// tied to them, must end soon after their host does. Shared by
// reactor/ownership.ts and reactor/listener.ts; holds no state.

/**
 * A daemon whose host vanishes without closing its sockets (power loss, a
 * cut network) would keep its session, and so its partitions, until the
 * server's TCP keepalive gives up (two hours by default). These per-session
 * settings make the server drop such a session, and release its locks,
 * after about 25 s; the client side keeps alive too.
 */
export const KEEPALIVE = {
  keepAlive: true,
  keepAliveInitialDelayMillis: 10_000,
  options: '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3',
} as const;
