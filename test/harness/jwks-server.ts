// mana-auth's part for the audit API tests: an Ed25519 key pair, its JWKS
// served over real HTTP at /api/v1/auth/jwks, and a signer for user tokens.

import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

export interface AuthServer {
  url: string;
  jwksRequests: number;
  sign(claims: JWTPayload & { sub?: string }, opts?: { expiresIn?: string | number | null; audience?: string; issuer?: string; unknownKey?: boolean }): Promise<string>;
  close(): Promise<void>;
}

export async function startAuthServer(issuer: string): Promise<AuthServer> {
  const known = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const stranger = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(known.publicKey)), kid: 'auth-key-1', alg: 'EdDSA', use: 'sig' };
  const state = { jwksRequests: 0 };
  const server = createServer((req, res) => {
    if (req.url === '/api/v1/auth/jwks') {
      state.jwksRequests++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    get jwksRequests() {
      return state.jwksRequests;
    },
    async sign(claims, opts = {}) {
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', kid: opts.unknownKey ? 'auth-key-unknown' : 'auth-key-1' })
        .setIssuedAt()
        .setIssuer(opts.issuer ?? issuer)
        .setAudience(opts.audience ?? 'mana');
      // null: a token without `exp` (never valid for the audit API)
      if (opts.expiresIn !== null) jwt.setExpirationTime(opts.expiresIn ?? '10m');
      return jwt.sign(opts.unknownKey ? stranger.privateKey : known.privateKey);
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
