/**
 * etcd's gRPC gateway speaks protobuf's JSON mapping as grpc-gateway v1's
 * default marshaler writes it (`JSONPb{OrigName: true}`, measured against
 * etcd 3.4): fields under their proto names, 64-bit integers as strings,
 * bytes as standard base64, enums by name, and zero values left out. On the
 * way in it is lenient as etcd is: proto names or lowerCamelCase, integers
 * as numbers or strings, enums by name or number, unknown fields ignored.
 *
 * Enum values go by etcd's names (NOT_EQUAL, DELETE): the `etcd3` package's
 * proto files, which we load, spell them in CamelCase (NotEqual, Delete),
 * and etcd's upper snake case follows from that spelling (`etcdEnumName`).
 *
 * Pure functions over protobufjs reflection; `gateway.ts` moves the bytes.
 */
import * as protobuf from "protobufjs";
import { GrpcStatus } from "../errors";
import { statusError } from "./grpc-call";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const INT64_TYPES = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const INT32_TYPES = new Set(["int32", "uint32", "sint32", "fixed32", "sfixed32"]);
const UNSIGNED_TYPES = new Set(["uint64", "fixed64", "uint32", "fixed32"]);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const INT32_MAX = 2 ** 31 - 1;
const UINT32_MAX = 2 ** 32 - 1;

/** A bad request body: INVALID_ARGUMENT, as the gateway answers one (HTTP 400). */
function invalid(message: string): Error {
  return statusError(GrpcStatus.InvalidArgument, message);
}

/**
 * A JSON request body as a message of `type`, ready for `type.encode`.
 * Throws a StatusError (INVALID_ARGUMENT) naming the field at fault.
 */
export function messageFromJson(type: protobuf.Type, json: unknown): protobuf.Message {
  return type.fromObject(objectFromJson(type, json, type.name));
}

function objectFromJson(type: protobuf.Type, json: unknown, where: string): Record<string, unknown> {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw invalid(`${where}: expected a JSON object, got ${describe(json)}`);
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(json as JsonObject)) {
    const field = fieldNamed(type, name);
    if (!field || value === null) continue; // unknown fields are ignored, as etcd's gateway does; null is unset
    const path = `${where}.${field.name}`;
    if (field.repeated) {
      if (!Array.isArray(value)) throw invalid(`${path}: expected a JSON array, got ${describe(value)}`);
      out[field.name] = value.map((v, i) => valueFromJson(field, v, `${path}[${i}]`));
    } else {
      out[field.name] = valueFromJson(field, value, path);
    }
  }
  return out;
}

/** A field by its proto name or its lowerCamelCase JSON name. */
function fieldNamed(type: protobuf.Type, name: string): protobuf.Field | undefined {
  return type.fields[name] ?? type.fieldsArray.find((f) => lowerCamel(f.name) === name);
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function valueFromJson(field: protobuf.Field, value: Json, path: string): unknown {
  const resolved = field.resolve().resolvedType;
  if (resolved instanceof protobuf.Type) return objectFromJson(resolved, value, path);
  if (resolved instanceof protobuf.Enum) return enumFromJson(resolved, value, path);
  const t = field.type;
  if (INT64_TYPES.has(t)) return integerFromJson(value, path, t, UNSIGNED_TYPES.has(t) ? UINT64_MAX : INT64_MAX).toString();
  if (INT32_TYPES.has(t)) return Number(integerFromJson(value, path, t, UNSIGNED_TYPES.has(t) ? BigInt(UINT32_MAX) : BigInt(INT32_MAX)));
  if (t === "bool") {
    if (typeof value !== "boolean") throw invalid(`${path}: expected true or false, got ${describe(value)}`);
    return value;
  }
  if (t === "string") {
    if (typeof value !== "string") throw invalid(`${path}: expected a string, got ${describe(value)}`);
    return value;
  }
  if (t === "bytes") {
    if (typeof value !== "string") throw invalid(`${path}: expected base64 bytes in a string, got ${describe(value)}`);
    return bytesFromBase64(value, path);
  }
  if (t === "double" || t === "float") {
    if (typeof value !== "number") throw invalid(`${path}: expected a number, got ${describe(value)}`);
    return value;
  }
  throw invalid(`${path}: fields of type ${t} are not supported`);
}

/** An integer given as a JSON number or a string of digits, within the field's range. */
function integerFromJson(value: Json, path: string, type: string, max: bigint): bigint {
  const text = typeof value === "number" ? (Number.isInteger(value) ? BigInt(value).toString() : "") : typeof value === "string" ? value : "";
  if (!/^-?\d+$/.test(text)) throw invalid(`${path}: expected an integer (${type}), got ${describe(value)}`);
  const n = BigInt(text);
  const min = UNSIGNED_TYPES.has(type) ? 0n : -max - 1n;
  if (n < min || n > max) throw invalid(`${path}: ${text} is out of range for ${type}`);
  return n;
}

/** etcd's name for an enum value the etcd3 package spells in CamelCase: NotEqual -> NOT_EQUAL, Readwrite -> READWRITE. */
export function etcdEnumName(camel: string): string {
  return camel.replace(/(?<=.)([A-Z])/g, "_$1").toUpperCase();
}

function enumFromJson(e: protobuf.Enum, value: Json, path: string): number {
  if (typeof value === "number" && Number.isInteger(value)) return value; // numbers pass, known or not, as in etcd
  const names = Object.keys(e.values);
  const known = typeof value === "string" ? names.find((n) => etcdEnumName(n) === value) : undefined;
  if (known !== undefined) return e.values[known];
  throw invalid(`${path}: unknown value ${describe(value)} for enum ${e.name} (one of ${names.map(etcdEnumName).join(", ")})`);
}

/** Standard or URL-safe base64, padded or not; a bad character is named by its offset, as Go's decoder does. */
export function bytesFromBase64(text: string, path: string): Buffer {
  const bad = text.search(/[^A-Za-z0-9+/\-_=]/);
  const padAt = text.indexOf("=");
  const misplacedPad = padAt >= 0 && !/^={1,2}$/.test(text.slice(padAt));
  const lengthOff = padAt >= 0 ? text.length % 4 !== 0 : text.length % 4 === 1;
  if (bad >= 0 || misplacedPad || lengthOff) {
    const at = bad >= 0 ? bad : misplacedPad ? padAt : text.length - 1;
    throw invalid(`${path}: illegal base64 data at input byte ${at}`);
  }
  return Buffer.from(text, "base64");
}

/**
 * A decoded message as the gateway writes it: proto field names in
 * declaration order, zero values, empty lists and unset messages left out.
 */
export function messageToJson(type: protobuf.Type, message: protobuf.Message | Record<string, unknown>): JsonObject {
  const m = message as unknown as Record<string, unknown>;
  const out: JsonObject = {};
  for (const field of type.fieldsArray) {
    const value = m[field.name];
    if (value === null || value === undefined) continue;
    if (field.repeated) {
      const list = value as unknown[];
      if (list.length > 0) out[field.name] = list.map((v) => valueToJson(field, v));
      continue;
    }
    const resolved = field.resolve().resolvedType;
    if (resolved instanceof protobuf.Enum && value === 0) continue;
    const json = valueToJson(field, value);
    if (!(resolved instanceof protobuf.Type) && isZero(json)) continue; // messages are written when set, even if empty
    out[field.name] = json;
  }
  return out;
}

function valueToJson(field: protobuf.Field, value: unknown): Json {
  const resolved = field.resolve().resolvedType;
  if (resolved instanceof protobuf.Type) return messageToJson(resolved, value as protobuf.Message);
  if (resolved instanceof protobuf.Enum) {
    const name = resolved.valuesById[value as number];
    return name === undefined ? (value as number) : etcdEnumName(name);
  }
  const t = field.type;
  if (INT64_TYPES.has(t)) return String(value); // a Long, or a number below 2^53
  if (t === "bytes") return Buffer.from(value as Uint8Array).toString("base64");
  return value as Json;
}

/** Whether a scalar, as written, is its type's zero value (left out: grpc-gateway's EmitDefaults is off). */
function isZero(json: Json): boolean {
  return json === 0 || json === "0" || json === "" || json === false;
}

/** One line of a streamed answer: `{"result": message}`. */
export function resultChunk(result: JsonObject): string {
  return `${JSON.stringify({ result })}\n`;
}

/** grpc-gateway v1's error line ending a streamed answer. */
export function errorChunk(code: number, message: string, httpStatus: number, httpStatusText: string): string {
  return `${JSON.stringify({ error: { grpc_code: code, http_code: httpStatus, message, http_status: httpStatusText } })}\n`;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** Upper bound on one JSON value in a request stream (a watch or keep-alive request is tiny; a bound keeps a client from making us buffer without end). */
export const STREAM_VALUE_BYTES_MAX = 4 * 1024 * 1024;

/**
 * Cuts a request body into its top-level JSON values, as Go's json.Decoder
 * reads a stream of them (whitespace between values, none needed between
 * objects). Fed chunk by chunk; returns the values each chunk completes.
 */
export class JsonStreamSplitter {
  private text = "";
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Where the value being scanned starts in `text` (-1: between values). */
  private start = -1;
  private scanned = 0;

  push(chunk: string): unknown[] {
    this.text += chunk;
    const out: unknown[] = [];
    for (let i = this.scanned; i < this.text.length; i++) {
      const c = this.text[i];
      if (this.start < 0) {
        if (c === " " || c === "\n" || c === "\r" || c === "\t") continue;
        if (c !== "{" && c !== "[") throw invalid(`request stream: expected a JSON object, got ${describe(this.text.slice(i, i + 20))}`);
        this.start = i;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === "\\") this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === "{" || c === "[") this.depth++;
      else if (c === "}" || c === "]") {
        if (--this.depth === 0) {
          out.push(parseJson(this.text.slice(this.start, i + 1)));
          this.start = -1;
        }
      }
    }
    if (this.start < 0) {
      this.text = "";
      this.scanned = 0;
    } else {
      this.text = this.text.slice(this.start);
      this.scanned = this.text.length;
      this.start = 0;
      if (this.text.length > STREAM_VALUE_BYTES_MAX) throw invalid(`request stream: a value over ${STREAM_VALUE_BYTES_MAX} bytes`);
    }
    return out;
  }

  /** Whether the stream stopped inside a value. */
  get partial(): boolean {
    return this.start >= 0;
  }
}

/** JSON.parse with the gateway's error (INVALID_ARGUMENT). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalid(`request body is not JSON: ${(e as Error).message}`);
  }
}
