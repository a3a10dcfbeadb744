// otlp_build.mjs: small hand-built OTLP requests (protobuf and JSON) for tests that talk to the
// collector without the SDK, and a reader for google.rpc.Status in protobuf.
//
// Field numbers are those of opentelemetry-proto (see proto/ in this repository).

import { randomBytes } from 'node:crypto';

/** Protobuf base-128 varint of a non-negative number or BigInt. */
export function varint(n) {
    let v = BigInt(n);
    if (v < 0n) {
        v += 1n << 64n; // two's complement, as protobuf encodes negative int64
    }
    const out = [];
    do {
        let b = Number(v & 0x7fn);
        v >>= 7n;
        if (v > 0n) {
            b |= 0x80;
        }
        out.push(b);
    } while (v > 0n);
    return Buffer.from(out);
}

const key = (field, wireType) => varint((field << 3) | wireType);

export function fVarint(field, n) {
    return Buffer.concat([key(field, 0), varint(n)]);
}

export function fBytes(field, bytes) {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
    return Buffer.concat([key(field, 2), varint(b.length), b]);
}

export function fString(field, s) {
    return fBytes(field, Buffer.from(s, 'utf8'));
}

export function fMsg(field, ...parts) {
    return fBytes(field, Buffer.concat(parts));
}

export function fFixed64(field, n) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(n)));
    return Buffer.concat([key(field, 1), b]);
}

export function fDouble(field, x) {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(x);
    return Buffer.concat([key(field, 1), b]);
}

export function fFixed32(field, n) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n >>> 0);
    return Buffer.concat([key(field, 5), b]);
}

export function fSfixed64(field, n) {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return Buffer.concat([key(field, 1), b]);
}

/** A packed repeated fixed64 field. */
export function fPackedFixed64(field, list) {
    const b = Buffer.alloc(8 * list.length);
    list.forEach((n, i) => b.writeBigUInt64LE(BigInt(n), 8 * i));
    return fBytes(field, b);
}

/** A packed repeated double field. */
export function fPackedDouble(field, list) {
    const b = Buffer.alloc(8 * list.length);
    list.forEach((x, i) => b.writeDoubleLE(x, 8 * i));
    return fBytes(field, b);
}

/** KeyValue{key, value: AnyValue} in field `field`; value is an encoded AnyValue body. */
export function fKeyValue(field, k, anyValueBytes) {
    return fMsg(field, fString(1, k), fBytes(2, anyValueBytes));
}

export const newTraceId = () => randomBytes(16).toString('hex');
export const newSpanId = () => randomBytes(8).toString('hex');

const NOW_NS = () => BigInt(Date.now()) * 1000000n;

// A KeyValue{key=1, value=2: AnyValue{string_value=1}} in field `field` of its parent
// (Resource.attributes = 1, Span.attributes = 9).
const pbStrAttr = (k, v, field = 1) => fMsg(field, fString(1, k), fMsg(2, fString(1, v)));

/**
 * ExportTraceServiceRequest with one span named `name` (and a string attribute `pad` of
 * padBytes bytes when given, to make it large). Returns {bytes, traceId, spanId}.
 */
export function tracesProto(name, { padBytes = 0, spanExtra = Buffer.alloc(0) } = {}) {
    const traceId = newTraceId();
    const spanId = newSpanId();
    const t = NOW_NS();
    const span = Buffer.concat([
        fBytes(1, Buffer.from(traceId, 'hex')), fBytes(2, Buffer.from(spanId, 'hex')),
        fString(5, name), fVarint(6, 1), fFixed64(7, t), fFixed64(8, t + 1000n),
        padBytes > 0 ? pbStrAttr('pad', 'p'.repeat(padBytes), 9) : Buffer.alloc(0),
        spanExtra,
    ]);
    const resource = fMsg(1, pbStrAttr('service.name', 'bad-input-test'));
    const rs = fMsg(1, resource, fMsg(2, fMsg(1, fString(1, 'hand-built')), fMsg(2, span)));
    return { bytes: rs, traceId, spanId };
}

/**
 * Span.attributes (field 9) holding one KeyValue whose value is an AnyValue nested `depth`
 * array levels deep: AnyValue{array_value=5: ArrayValue{values=1: AnyValue{...}}}. Built from
 * the inside out without copying, since each level is the last field of its parent.
 */
export function deepAttrProto(depth) {
    const inner = fString(1, 'bottom'); // AnyValue.string_value
    const prefixes = [];
    let len = inner.length;
    for (let i = 0; i < depth; i++) {
        // ArrayValue.values (1) holding the AnyValue so far, then AnyValue.array_value (5).
        const p1 = Buffer.concat([key(1, 2), varint(len)]);
        len += p1.length;
        const p2 = Buffer.concat([key(5, 2), varint(len)]);
        len += p2.length;
        prefixes.push(p1, p2);
    }
    const anyValue = Buffer.concat([...prefixes.reverse(), inner]);
    return fMsg(9, fString(1, 'deep'), fBytes(2, anyValue));
}

/** The same nesting as OTLP JSON text for a span's attribute list. */
export function deepAttrJson(depth) {
    return `[{"key":"deep","value":${'{"arrayValue":{"values":['.repeat(depth)}` +
        `{"stringValue":"bottom"}${']}}'.repeat(depth)}}]`;
}

/**
 * A one-span request of exactly `size` bytes (protobuf, or JSON text with json set), padded
 * with a string attribute. Varint lengths jump at 128-byte boundaries, so when no padding fits
 * exactly the span name grows by a character and the search runs again.
 */
export function sizedTraces(name, size, { json = false } = {}) {
    const make = (n, pad) => (json ? Buffer.from(tracesJson(n, { padBytes: pad }).text)
                                   : tracesProto(n, { padBytes: pad }).bytes);
    for (let extra = 0; extra < 8; extra++) {
        const n = name + '_'.repeat(extra);
        // Measure the overhead with a pad of about the final size, so varints have their
        // final widths.
        const probe = Math.max(1, size - 1000);
        const base = make(n, probe).length - probe;
        for (let pad = Math.max(1, size - base - 4); pad <= size - base + 4; pad++) {
            const b = make(n, pad);
            if (b.length === size) {
                return { bytes: b, name: n };
            }
        }
    }
    throw new Error(`cannot build a request of exactly ${size} bytes`);
}

/** ExportMetricsServiceRequest with one int gauge point named `name`. */
export function metricsProto(name, value = 7) {
    const point = Buffer.concat([fFixed64(3, NOW_NS()), key(6, 1), (() => {
        const b = Buffer.alloc(8);
        b.writeBigInt64LE(BigInt(value));
        return b;
    })()]);
    const metric = Buffer.concat([fString(1, name), fMsg(5, fMsg(1, point))]);
    const rm = fMsg(1, fMsg(1, pbStrAttr('service.name', 'bad-input-test')),
                    fMsg(2, fMsg(2, metric)));
    return { bytes: rm };
}

/** ExportLogsServiceRequest with one record whose body is the string `body`. */
export function logsProto(body) {
    const rec = Buffer.concat([fFixed64(1, NOW_NS()), fVarint(2, 9), fMsg(5, fString(1, body))]);
    const rl = fMsg(1, fMsg(1, pbStrAttr('service.name', 'bad-input-test')), fMsg(2, fMsg(2, rec)));
    return { bytes: rl };
}

/** The same one-span request as OTLP JSON text. */
export function tracesJson(name, { padBytes = 0, traceId = newTraceId(), spanId = newSpanId() } = {}) {
    const t = NOW_NS();
    const attrs = padBytes > 0 ? [{ key: 'pad', value: { stringValue: 'p'.repeat(padBytes) } }] : [];
    const req = {
        resourceSpans: [{
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'bad-input-test' } }] },
            scopeSpans: [{
                scope: { name: 'hand-built' },
                spans: [{ traceId, spanId, name, kind: 1, startTimeUnixNano: String(t),
                          endTimeUnixNano: String(t + 1000n), attributes: attrs }],
            }],
        }],
    };
    return { text: JSON.stringify(req), traceId, spanId };
}

/** Decode a google.rpc.Status protobuf: {code, message}. Throws on malformed input. */
export function decodeStatus(buf) {
    const out = { code: 0, message: '' };
    let i = 0;
    const readVarint = () => {
        let v = 0n;
        let shift = 0n;
        for (;;) {
            if (i >= buf.length) {
                throw new Error('truncated varint in google.rpc.Status');
            }
            const b = buf[i++];
            v |= BigInt(b & 0x7f) << shift;
            if ((b & 0x80) === 0) {
                return v;
            }
            shift += 7n;
        }
    };
    while (i < buf.length) {
        const k = Number(readVarint());
        const field = k >> 3;
        const wt = k & 7;
        if (wt === 0) {
            const v = readVarint();
            if (field === 1) {
                out.code = Number(BigInt.asIntN(32, v));
            }
        } else if (wt === 2) {
            const len = Number(readVarint());
            if (i + len > buf.length) {
                throw new Error('truncated field in google.rpc.Status');
            }
            if (field === 2) {
                out.message = buf.subarray(i, i + len).toString('utf8');
            }
            i += len;
        } else if (wt === 1) {
            i += 8;
        } else if (wt === 5) {
            i += 4;
        } else {
            throw new Error(`wire type ${wt} in google.rpc.Status`);
        }
    }
    return out;
}
