import StampedeRedis

/// What the cache writes to Redis and reads back, in one place: the names of a key's Redis
/// keys, the entry's packed metadata, the messages on the events channel and the lease-get
/// script's reply. The Lua side is ``CacheScripts``, beside it; tests run the scripts and
/// read what they write with this, so the two cannot drift apart.
///
/// For cache key `K` in namespace `N`:
/// - `{N:K}`: the entry, a hash with fields `v` (the value's bytes), `f` (the fence of the
///   fill that wrote it) and `m`, the metadata packed in one field so that a hit reads two
///   fields: `2:<fresh-until>:<stale-until>:<load ms>:<negative>` (times in ms since the
///   epoch by Redis's clock, each at most 15 digits so that Lua's numbers hold them exactly;
///   negative `1` or `0`). It expires at stale-until.
/// - `{N:K}:lock`: the load lease's token; `{N:K}:fence`: the fence. The braces keep all
///   three in one cluster slot.
/// - Channel `N:events`, one per namespace, carries a message per fill, failure and
///   invalidation, naming the key.
@_spi(Benchmarks)
public enum CacheFormat {
    /// The Redis keys behind one cache key.
    package struct Keys: Sendable {
        package let entry: String
        package let lock: String
        package let fence: String

        package init(namespace: String, key: String) {
            entry = CacheFormat.entryKey(namespace: namespace, key: key)
            lock = entry + ":lock"
            fence = entry + ":fence"
        }

        /// As the scripts take them: KEYS[1] entry, KEYS[2] lock, KEYS[3] fence.
        var all: [RedisArgument] { [RedisArgument(entry), RedisArgument(lock), RedisArgument(fence)] }
    }

    /// The entry's key: `{N:K}`.
    static func entryKey(namespace: String, key: String) -> String { "{\(namespace):\(key)}" }

    /// The channel of a namespace's messages.
    static func channel(namespace: String) -> String { namespace + ":events" }

    /// The entry's fields: the value's bytes, the fence of the fill that wrote it, the
    /// packed metadata.
    package static let valueField = "v", fenceField = "f", metadataField = "m"

    /// The hit path's one command: the value and the packed metadata of the entry.
    package static func hitRead(namespace: String, key: String) -> [RedisArgument] {
        ["HMGET", RedisArgument(entryKey(namespace: namespace, key: key)), RedisArgument(valueField), RedisArgument(metadataField)]
    }

    /// The longest number the metadata holds, in digits.
    static let maximumDigits = 15

    /// A fill message carries the value when it has at most this many bytes; a larger one
    /// sends the plain message, and waiters read the value back.
    static let largestValueInMessage = 16_384

    // MARK: Entries

    /// The packed metadata of `entry` (the `m` field).
    static func metadata(of entry: StoredEntry) -> String {
        "2:\(entry.freshUntil):\(entry.staleUntil):\(entry.loadDuration):\(entry.isNegative ? "1" : "0")"
    }

    /// The entry from the hit path's reply (the `v` and `m` fields); `nil` when it is
    /// absent or unreadable (the lease-get script then decides what to do with it).
    public static func entry(hashFields fields: [RedisValue]) -> StoredEntry? {
        guard fields.count == 2, let value = fields[0].bytes, case .bulkString(let meta) = fields[1],
              meta.count >= 9, meta[0] == UInt8(ascii: "2"), meta[1] == UInt8(ascii: ":")
        else { return nil }
        var index = 2
        func number() -> Int? { decimal(in: meta, at: &index) }
        guard let freshUntil = number(), let staleUntil = number(), let loadDuration = number(),
              index == meta.count - 1, meta[index] == UInt8(ascii: "0") || meta[index] == UInt8(ascii: "1")
        else { return nil }
        return StoredEntry(
            value: value, freshUntil: freshUntil, staleUntil: staleUntil, loadDuration: loadDuration,
            isNegative: meta[index] == UInt8(ascii: "1"))
    }

    /// The decimal number at `index` in `bytes`, ended by a ':' that is skipped too; `nil`
    /// when it is empty, longer than ``maximumDigits``, holds another byte, or has no ':'
    /// after it.
    private static func decimal(in bytes: [UInt8], at index: inout Int) -> Int? {
        var value = 0
        var digits = 0
        while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10, digits < maximumDigits else { return nil }
            value = value * 10 + Int(digit)
            digits += 1
            index += 1
        }
        guard digits > 0, index < bytes.count else { return nil }
        index += 1  // the ':'
        return value
    }

    // MARK: Messages

    /// A message on the events channel.
    public enum Message: Sendable, Equatable {
        /// A fill stored a value; `entry` when the value came with the message (its
        /// `staleUntil` is its `freshUntil`: only freshness matters to a waiter).
        case filled(key: String, entry: StoredEntry?)
        /// A loader failed.
        case failed(key: String)
        /// The key was invalidated or expired.
        case invalidated(key: String)

        /// The message as sent. A fill with its value is written only by the fill script:
        /// `V<key length>:<key><fresh-until>:<now>:<negative><value>`.
        var payload: String {
            switch self {
            case .filled(let key, _): "F" + key
            case .failed(let key): "E" + key
            case .invalidated(let key): "I" + key
            }
        }

        /// The message in `payload`; `nil` when it is not one of ours.
        public init?(payload: [UInt8]) {
            guard let first = payload.first else { return nil }
            switch first {
            case UInt8(ascii: "V"):
                var index = 1
                func number() -> Int? { CacheFormat.decimal(in: payload, at: &index) }
                guard let keyLength = number(), index + keyLength <= payload.count else { return nil }
                let key = String(decoding: payload[index..<(index + keyLength)], as: UTF8.self)
                index += keyLength
                guard let freshUntil = number(), number() != nil, index < payload.count,
                      payload[index] == UInt8(ascii: "0") || payload[index] == UInt8(ascii: "1")
                else { return nil }
                let entry = StoredEntry(
                    value: Array(payload[(index + 1)...]), freshUntil: freshUntil, staleUntil: freshUntil,
                    isNegative: payload[index] == UInt8(ascii: "1"))
                self = .filled(key: key, entry: entry)
            case UInt8(ascii: "F"): self = .filled(key: String(decoding: payload.dropFirst(), as: UTF8.self), entry: nil)
            case UInt8(ascii: "E"): self = .failed(key: String(decoding: payload.dropFirst(), as: UTF8.self))
            case UInt8(ascii: "I"): self = .invalidated(key: String(decoding: payload.dropFirst(), as: UTF8.self))
            default: return nil
            }
        }

        var key: String {
            switch self {
            case .filled(let key, _), .failed(let key), .invalidated(let key): key
            }
        }
    }
}
