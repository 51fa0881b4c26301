// Verifies a user's bearer token for the audit API: an EdDSA JWT from
// mana-auth, checked against its JWKS (`{MANA_AUTH_URL}/api/v1/auth/jwks`,
// fetched by jose, cached, refetched when a token names an unknown `kid`),
// issuer JWT_ISSUER or MANA_AUTH_URL, audience JWT_AUDIENCE. Returns the
// user id (`sub`). Every failure is one 401 with a short code; the token
// itself never reaches a log or a response.

import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import { HttpError } from './server.js';

export interface UserTokenOptions {
  authUrl: string;
  issuer: string | undefined;
  audience: string;
}

export type VerifyUserToken = (authorization: string | string[] | undefined) => Promise<string>;

const unauthorized = (code: string, message: string) => new HttpError(401, code, message);

export function createUserTokenVerifier(o: UserTokenOptions): VerifyUserToken {
  const jwks = createRemoteJWKSet(new URL(`${o.authUrl}/api/v1/auth/jwks`), {
    timeoutDuration: 5_000,
    // Refetch on an unknown kid at most every 30 s, so garbage tokens with
    // random kids cannot make us hammer mana-auth.
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  });
  const issuers = [...new Set([o.issuer, o.authUrl].filter((x): x is string => typeof x === 'string' && x.length > 0))];
  return async (authorization) => {
    const header = Array.isArray(authorization) ? authorization[0] : authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m) throw unauthorized('missing-token', 'an Authorization: Bearer <user JWT> header is required');
    try {
      const { payload } = await jwtVerify(m[1]!, jwks, { algorithms: ['EdDSA'], issuer: issuers, audience: o.audience, requiredClaims: ['exp'] });
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw unauthorized('invalid-token', 'the token has no subject');
      return payload.sub;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      if (error instanceof errors.JWTExpired) throw unauthorized('token-expired', 'the token has expired');
      if (error instanceof errors.JWTClaimValidationFailed) throw unauthorized('invalid-token', `the token's ${error.claim} claim is not accepted`);
      if (error instanceof errors.JWKSNoMatchingKey) throw unauthorized('invalid-token', 'the token was signed with an unknown key');
      if (error instanceof errors.JWSSignatureVerificationFailed) throw unauthorized('invalid-token', 'the token signature does not verify');
      // Key-set trouble is ours, not the caller's: a timeout, an invalid or
      // non-200 key set (jose raises its base JOSEError for that), or the
      // fetch failing outright.
      const keySetTrouble =
        error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid ||
        !(error instanceof errors.JOSEError) || (error as Error).constructor === errors.JOSEError;
      if (keySetTrouble) throw new HttpError(503, 'auth-unavailable', 'the signing keys of mana-auth could not be fetched; try again');
      throw unauthorized('invalid-token', 'the token is not a valid user token');
    }
  };
}
