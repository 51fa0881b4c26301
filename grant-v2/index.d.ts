// Types of grant-v2/index.js (the reference module; plain JavaScript so it
// runs unchanged in a browser, Bun and Node).

export interface RecordRef { userId: string; table: string; recordId: string }
export interface RecordKeys {
  aesKey(ref: RecordRef & { epoch: number }): Promise<CryptoKey>;
  rawKey(ref: RecordRef & { epoch: number }): Promise<Uint8Array>;
}
export type Opened = { ok: true; value: unknown } | { ok: false; reason: string };
export interface RunnerKey { key: CryptoKey; kid: string }
export interface GrantV2 { v: 2; header: string; wrappedKey: string; keys: string }

export const RECORD_KEY_TABLES: readonly string[];
export const GRANT_LABEL: string;
export function isEncrypted(value: unknown): value is string;
export function canon(parts: readonly (string | number)[]): Uint8Array;
export function toBase64(bytes: Uint8Array): string;
export function fromBase64(text: string): Uint8Array | null;
export function importRecordKeyRoot(masterKey: Uint8Array): Promise<CryptoKey>;
export function importLegacyKey(masterKey: Uint8Array): Promise<CryptoKey>;
export function createRecordKeys(root: CryptoKey, opts?: { maxEntries?: number }): RecordKeys;
export function encryptField(keys: RecordKeys, ref: RecordRef, field: string, value: unknown, epoch: number, iv?: Uint8Array): Promise<string>;
export function decryptField(keys: RecordKeys, ref: RecordRef, field: string, value: unknown, opts?: { legacyKey?: CryptoKey }): Promise<Opened>;
export function encryptRecord<T extends Record<string, unknown>>(keys: RecordKeys, ref: RecordRef, record: T, fields: readonly string[], epoch?: number): Promise<T>;
export function decryptRecord(keys: RecordKeys, ref: RecordRef, record: Record<string, unknown>, opts?: { legacyKey?: CryptoKey }): Promise<{ ok: true; record: Record<string, unknown> } | { ok: false; field: string; reason: string }>;
export function recordEpoch(record: Record<string, unknown>): number;
export function upgradeDiff(keys: RecordKeys, ref: RecordRef, record: Record<string, unknown>, epoch: number, opts?: { legacyKey?: CryptoKey }): Promise<Record<string, string>>;
export function importRunnerPublicKey(spki: string | Uint8Array): Promise<RunnerKey>;
export function buildGrant(args: {
  keys: RecordKeys; userId: string; missionId: string; records: readonly { table: string; id: string; epoch: number }[]; runner: RunnerKey;
  now?: number; ttlMs?: number; grantId?: string; gwk?: Uint8Array; iv?: Uint8Array;
}): Promise<GrantV2>;
