import ArgumentParser
import Stampede
import StampedeRedis

/// What a storm does to Redis and the origin.
enum Scenario: String, ExpressibleByArgument, CaseIterable, Sendable, Codable {
    /// Keys absent; every caller asks once, all at one instant.
    case miss
    /// Values soft-stale (past their time to live, inside stale-while-revalidate); one wave.
    case stale
    /// Fresh values over many keys; callers loop for the duration.
    case hit
    /// Every caller on one fresh key, looping for the duration.
    case hotHit = "hot-hit"
    /// Callers contend for one lock, each holding it for `--hold-ms`, for the duration.
    case lock

    /// One wave (each caller asks once) rather than a loop for the duration.
    var isWave: Bool { self == .miss || self == .stale }

    /// How many keys the scenario uses, given `--keys` (`nil` when not given): hot-hit and
    /// lock always use one.
    func keys(given: Int?) -> Int {
        switch self {
        case .miss, .stale: given ?? 8
        case .hit: given ?? 1_000
        case .hotHit, .lock: 1
        }
    }
}

/// `--scenario` and `--strategy`: one of the values, or all of them.
enum OneOrAll<Value: CaseIterable & RawRepresentable<String>>: ExpressibleByArgument {
    case one(Value)
    case all

    init?(argument: String) {
        if argument == "all" {
            self = .all
        } else if let value = Value(rawValue: argument) {
            self = .one(value)
        } else {
            return nil
        }
    }

    var values: [Value] {
        switch self {
        case .one(let value): [value]
        case .all: Array(Value.allCases)
        }
    }

    static var allValueStrings: [String] { Value.allCases.map(\.rawValue) + ["all"] }
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
}

/// How a storm's lookups (or, in the lock scenario, its critical sections) are protected,
/// for side-by-side comparison.
enum Strategy: String, ExpressibleByArgument, CaseIterable, Sendable, Codable {
    /// Cache-aside with no protection: every caller that misses calls the origin. Locks:
    /// `SET NX PX` polled every 10 ms, released with a plain `DEL`.
    case naive
    /// Cache-aside behind an in-process single flight: one origin call per process and key.
    /// Locks: an in-process lock only, which cannot exclude other processes.
    case local
    /// The full loader: one origin call per key across every process. Locks: ``RedisMutex``.
    case stampede

    struct Lookup: Sendable {
        let strategy: Strategy
        let client: RedisClient
        let cache: StampedeCache
        let namespace: String
        let ttlMs: Int
        let flights = SingleFlight<String, String>()

        func value(for key: String, origin: @escaping @Sendable () async throws -> String) async throws -> String {
            switch strategy {
            case .stampede:
                // Values as bytes, as cache-aside stores them: the storm compares the
                // protection, not the codec (a String would go through JSON).
                let bytes = try await cache.value(for: key, as: [UInt8].self) { Array(try await origin().utf8) }
                return String(decoding: bytes, as: UTF8.self)
            case .naive:
                return try await cacheAside(key, origin: origin)
            case .local:
                return try await flights.run(key: key) { try await cacheAside(key, origin: origin) }.value
            }
        }

        private func cacheAside(_ key: String, origin: () async throws -> String) async throws -> String {
            let redisKey = RedisArgument(StormKeys.aside(namespace, key))
            if let cached = try await client.send("GET", redisKey).string { return cached }
            let value = try await origin()
            try await client.send("SET", redisKey, RedisArgument(value), "PX", RedisArgument(ttlMs))
            return value
        }
    }
}

