import Foundation
import Synchronization
import StampedeRedis

/// An entry as stored in Redis: the hash at `{N:K}` that ``CacheScripts`` write (the
/// envelope). Times are milliseconds since the epoch by Redis's clock.
///
/// Internal to the cache; public only to the `Benchmarks` SPI, which measures its decoding.
@_spi(Benchmarks)
public struct StoredEntry: Sendable, Equatable {
    public var value: [UInt8]
    public var freshUntil: Int
    public var staleUntil: Int
    /// How long the load that filled it took, ms: early refresh weighs it.
    public var loadDuration: Int
    public var isNegative: Bool

    public init(value: [UInt8], freshUntil: Int, staleUntil: Int, loadDuration: Int = 0, isNegative: Bool = false) {
        self.value = value
        self.freshUntil = freshUntil
        self.staleUntil = staleUntil
        self.loadDuration = loadDuration
        self.isNegative = isNegative
    }

    /// The fields the hit path reads, in this order, with one `HMGET`: the value and the
    /// packed metadata (see ``CacheScripts``).
    public static let hashFields: [RedisArgument] = ["v", "m"]

    /// `HMGET` of ``hashFields`` of the entry for `key`: the hit path's one command.
    ///
    /// It writes the entry's key (``StampedeCache/entryKey(namespace:key:)``) from its parts
    /// straight into the connection's buffer: built as an argument array, the command cost
    /// an allocation a hit, and its key string another when the key had 16 bytes or more.
    struct Read: RedisCommand {
        let namespace: String
        let key: String

        func write(to writer: inout RedisArgumentWriter) {
            writer.append("HMGET")
            writer.append(concatenating: "{", namespace, ":", key, "}")
            for field in hashFields { writer.append(field) }
        }

        /// The same command as an argument array, for a pipeline.
        var arguments: [RedisArgument] {
            ["HMGET", RedisArgument(StampedeCache.entryKey(namespace: namespace, key: key))] + hashFields
        }
    }

    /// The entry from the values of ``hashFields``; `nil` when it is absent, of another
    /// format, or unreadable (the lease-get script then decides what to do with it).
    public init?(hashFields fields: [RedisValue]) {
        guard fields.count == 2, let value = fields[0].bytes, case .bulkString(let meta) = fields[1],
              meta.count >= 9, meta[0] == UInt8(ascii: "2"), meta[1] == UInt8(ascii: ":")
        else { return nil }
        // 2:<fresh-until>:<stale-until>:<load ms>:<negative>
        var index = 2
        func number() -> Int? { Self.decimal(in: meta, at: &index) }
        guard let freshUntil = number(), let staleUntil = number(), let loadDuration = number(),
              index == meta.count - 1, meta[index] == UInt8(ascii: "0") || meta[index] == UInt8(ascii: "1")
        else { return nil }
        self.init(
            value: value, freshUntil: freshUntil, staleUntil: staleUntil, loadDuration: loadDuration,
            isNegative: meta[index] == UInt8(ascii: "1"))
    }
}

extension StoredEntry {
    /// The decimal number at `index` in `bytes`, ended by a ':' that is skipped too; `nil`
    /// when it is empty, longer than 15 digits, holds another byte, or has no ':' after it.
    /// The scripts read numbers of at most 15 digits too (Lua's numbers hold them exactly):
    /// an entry they would replace as unreadable is never a hit here.
    static func decimal(in bytes: [UInt8], at index: inout Int) -> Int? {
        var value = 0
        var digits = 0
        while index < bytes.count, bytes[index] != UInt8(ascii: ":") {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10, digits < 15 else { return nil }
            value = value * 10 + Int(digit)
            digits += 1
            index += 1
        }
        guard digits > 0, index < bytes.count else { return nil }
        index += 1  // the ':'
        return value
    }

    /// Reads a fill message with its value: `V<key length>:<key><fresh-until>:<now>:<negative><value>`.
    public static func parseFill(_ payload: [UInt8]) -> (key: String, entry: StoredEntry)? {
        var index = 1
        func number() -> Int? { decimal(in: payload, at: &index) }
        guard let keyLength = number(), index + keyLength <= payload.count else { return nil }
        let key = String(decoding: payload[index..<(index + keyLength)], as: UTF8.self)
        index += keyLength
        guard let freshUntil = number(), number() != nil, index < payload.count else { return nil }
        let isNegative = payload[index] == UInt8(ascii: "1")
        let value = Array(payload[(index + 1)...])
        // Only freshness matters to a waiter; how long it may be served stale is not carried.
        let entry = StoredEntry(value: value, freshUntil: freshUntil, staleUntil: freshUntil, isNegative: isNegative)
        return (key, entry)
    }
}

extension CachePolicy {
    /// What a lookup may do with an entry.
    @_spi(Benchmarks)
    public enum Freshness: Sendable, Equatable {
        /// Serve it.
        case fresh
        /// Fresh, but early refresh (XFetch) picked this lookup to refresh it.
        case dueForEarlyRefresh
        /// Past its fresh time, inside stale-while-revalidate: serve it and refresh.
        case stale
        /// Past serving: load (or wait for the load).
        case expired
    }

    /// How this policy treats `entry` at Redis time `now`, given this lookup's early-refresh
    /// draw (``earlyRefreshDraw()``): XFetch refreshes when
    /// `now + loadDuration * draw >= freshUntil`, so slow loads start earlier.
    @_spi(Benchmarks)
    public func freshness(of entry: StoredEntry, now: Int, earlyRefreshDraw draw: Double) -> Freshness {
        if now < entry.freshUntil {
            let early = draw > 0 && Double(now) + Double(entry.loadDuration) * draw >= Double(entry.freshUntil)
            return early ? .dueForEarlyRefresh : .fresh
        }
        if now < entry.staleUntil && now < entry.freshUntil + staleWhileRevalidate.wholeMilliseconds { return .stale }
        return .expired
    }

    /// This lookup's early-refresh draw, `-beta * ln(rand)`, or 0 without early refresh.
    @_spi(Benchmarks)
    public func earlyRefreshDraw() -> Double {
        guard let beta = earlyRefreshBeta else { return 0 }
        return -beta * log(EarlyRefreshRandom.uniform())
    }
}

/// Uniform draws for early refresh on every lookup: SplitMix64 over one atomic counter,
/// seeded once from the system. The system generator costs a system call per draw (about
/// 0.4 us here, by the `CachePaths` benchmark); a draw that only spreads refreshes over time
/// needs no cryptographic quality.
enum EarlyRefreshRandom {
    private static let state = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    /// A number in (0, 1].
    static func uniform() -> Double {
        let z = SplitMix64.mix(state.wrappingAdd(SplitMix64.increment, ordering: .relaxed).newValue)
        return Double((z >> 11) + 1) * 0x1p-53
    }
}
