import MetricsTestKit
import Foundation
import Logging
import Metrics
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import Synchronization
import Testing

/// A simulated origin: counts its calls, says when they start, and can hold a load until
/// the test releases it.
final class FakeOrigin: Sendable {
    private struct State {
        var calls = 0
        var value = "v1"
        var cancelled = 0
    }
    private let state = Mutex(State())
    /// Notified on every call.
    private let called = AsyncSignal()
    /// Opened by ``release()``; held loads wait for it.
    private let gate = OneShot<Void>()

    var calls: Int { state.withLock { $0.calls } }
    /// How many held loads were cancelled before they were released.
    var cancelled: Int { state.withLock { $0.cancelled } }
    func set(_ value: String) { state.withLock { $0.value = value } }

    /// Returns the value at once.
    func load() async throws -> String {
        let value = state.withLock { state -> String in
            state.calls += 1
            return state.value
        }
        called.notify()
        return value
    }

    /// Returns the value as of the call, once ``release()`` was called (at once if it was);
    /// throws `CancellationError` when cancelled before that.
    func loadWhenReleased() async throws -> String {
        let value = try await load()
        guard await gate.wait() != nil else {
            state.withLock { $0.cancelled += 1 }
            throw CancellationError()
        }
        return value
    }

    /// Lets every held load, now and later, return.
    func release() { gate.finish(()) }

    /// Returns once at least `count` calls have started.
    func waitForCalls(_ count: Int) async {
        while true {
            let seen = called.generation
            if calls >= count || Task.isCancelled { return }
            await called.wait(after: seen)
        }
    }
}

struct OriginDown: Error {}

/// The JSON stored for `key` in Redis, read directly (without a lookup that could load).
func storedJSON(_ client: RedisClient, _ cache: StampedeCache, _ key: String) async -> String? {
    try? await client.send("HGET", RedisArgument(cache.keys(for: key).entry), RedisArgument(CacheFormat.valueField)).string
}

/// Writes an entry for `key` straight into Redis, in the cache's format: fresh for
/// `freshFor` ms (negative: stale since) and kept for `keptFor` ms from now by Redis's clock.
func plantEntry(_ client: RedisClient, _ cache: StampedeCache, _ key: String, value: String, freshFor: Int, keptFor: Int) async throws {
    let time = try #require(try await client.send("TIME").array)
    let now = try #require(time[0].int) * 1000 + (try #require(time[1].int)) / 1000
    let entry = StoredEntry(value: Array("\"\(value)\"".utf8), freshUntil: now + freshFor, staleUntil: now + keptFor, loadDuration: 5)
    let keys = cache.keys(for: key)
    try await client.send("HSET", RedisArgument(keys.entry), RedisArgument(CacheFormat.valueField), RedisArgument(bytes: entry.value),
                          RedisArgument(CacheFormat.fenceField), "1", RedisArgument(CacheFormat.metadataField), RedisArgument(CacheFormat.metadata(of: entry)))
    try await client.send("PEXPIREAT", RedisArgument(keys.entry), RedisArgument(entry.staleUntil))
}

extension StampedeCache {
    /// The Redis keys behind `key`.
    func keys(for key: String) -> CacheFormat.Keys { CacheFormat.Keys(namespace: configuration.namespace, key: key) }

    /// How many callers in this process wait for the lookup of `key` in flight.
    func waiting(for key: String) -> Int { flights.waiting(for: ExactKey(key)) }

    /// A cache on `clock` (a test clock), without logging.
    static func onClock(
        _ clock: any MonotonicClock, client: RedisClient, configuration: Configuration, metricsFactory: (any MetricsFactory)? = nil
    ) -> StampedeCache {
        StampedeCache(client: client, configuration: configuration,
                      logger: Logger(label: "stampede.cache", factory: { _ in SwiftLogNoOpLogHandler() }),
                      metricsFactory: metricsFactory, clock: clock)
    }
}

/// `cache.value(for:load:)` for a `String` origin, spelled out so that `#expect` and
/// closures around it need no type annotations.
func fetch(_ cache: StampedeCache, _ key: String, _ load: @escaping @Sendable () async throws -> String) async throws -> String {
    try await cache.value(for: key, load: load)
}

extension TestMetrics {
    /// The cache's counter `stampede.cache.NAME`, with its namespace dimension.
    func cacheCounter(_ name: String, of cache: StampedeCache) throws -> TestCounter {
        try expectCounter("stampede.cache.\(name)", [("namespace", cache.configuration.namespace)])
    }

    /// The cache's timer `stampede.cache.NAME`, with its namespace dimension.
    func cacheTimer(_ name: String, of cache: StampedeCache) throws -> TestTimer {
        try expectTimer("stampede.cache.\(name)", [("namespace", cache.configuration.namespace)])
    }
}
