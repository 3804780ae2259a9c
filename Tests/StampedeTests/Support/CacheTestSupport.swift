import Foundation
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import Synchronization
import Testing

/// A simulated origin: counts its calls, and can be slow or fail.
final class FakeOrigin: Sendable {
    private let state = Mutex((calls: 0, value: "v1"))
    var calls: Int { state.withLock { $0.calls } }
    func set(_ value: String) { state.withLock { $0.value = value } }

    func load(after delay: Duration = .zero) async throws -> String {
        let value = state.withLock { state -> String in
            state.calls += 1
            return state.value
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        return value
    }
}

struct OriginDown: Error {}

/// The JSON stored for `key` in Redis, read directly (without a lookup that could load).
func storedJSON(_ client: RedisClient, _ cache: StampedeCache, _ key: String) async -> String? {
    try? await client.send("HGET", RedisArgument(cache.keys(for: key).entry), "v").string
}

/// Writes an entry for `key` straight into Redis, in the cache's format: fresh for
/// `freshFor` ms (negative: stale since) and kept for `keptFor` ms from now by Redis's clock.
func plantEntry(_ client: RedisClient, _ cache: StampedeCache, _ key: String, value: String, freshFor: Int, keptFor: Int) async throws {
    let time = try #require(try await client.send("TIME").array)
    let now = try #require(time[0].int) * 1000 + (try #require(time[1].int)) / 1000
    let entry = StoredEntry(value: Array("\"\(value)\"".utf8), freshUntil: now + freshFor, staleUntil: now + keptFor, loadDuration: 5)
    let keys = cache.keys(for: key)
    try await client.send("HSET", RedisArgument(keys.entry), "v", RedisArgument(bytes: entry.value), "f", "1",
                          "m", RedisArgument(CacheFormat.metadata(of: entry)))
    try await client.send("PEXPIREAT", RedisArgument(keys.entry), RedisArgument(entry.staleUntil))
}

extension StampedeCache {
    /// The Redis keys behind `key`.
    func keys(for key: String) -> CacheFormat.Keys { CacheFormat.Keys(namespace: configuration.namespace, key: key) }
}

/// `cache.value(for:load:)` for a `String` origin, spelled out so that `#expect` and
/// closures around it need no type annotations.
func fetch(_ cache: StampedeCache, _ key: String, _ load: @escaping @Sendable () async throws -> String) async throws -> String {
    try await cache.value(for: key, load: load)
}
