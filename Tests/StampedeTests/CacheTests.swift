import Foundation
import MetricsTestKit
@_spi(Benchmarks) @testable import Stampede
import NIOCore
@testable import StampedeRedis
import StampedeTestSupport
import Synchronization
import Testing

@Suite("StampedeCache", .timeLimit(.minutes(2)))
struct CacheTests {
    func cache(_ client: RedisClient, _ policy: CachePolicy = CachePolicy(), namespace: String = uniquePrefix()) -> StampedeCache {
        StampedeCache(client: client, configuration: .init(namespace: namespace, policy: policy))
    }

    @Test("the hit path's read is HMGET of the entry key's value and metadata")
    func hitReadNamesTheEntry() {
        for (namespace, key) in [("n", "k"), ("app:v2", "user:42 \u{e9}"), ("n", String(repeating: "x", count: 1000))] {
            let keys = CacheFormat.Keys(namespace: namespace, key: key)
            #expect(CacheFormat.hitRead(namespace: namespace, key: key) == ["HMGET", RedisArgument(keys.entry), "v", "m"])
            #expect(keys.entry == "{\(namespace):\(key)}" && keys.lock == keys.entry + ":lock" && keys.fence == keys.entry + ":fence")
        }
    }

    @Test func loadsOnceThenServesHits() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            origin.set("v2")
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            #expect(origin.calls == 1)
            await cache.shutdown()
        }
    }

    @Test func coalescesConcurrentMissesAcrossTwoCachesSharingRedis() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            // A second client and cache stand for a second process (own single flight, own connection).
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let caches = [cache(client, namespace: namespace), cache(otherClient, namespace: namespace)]
            let origin = FakeOrigin()
            let values = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<100 {
                    let cache = caches[index % 2]
                    group.addTask { try await cache.value(for: "hot") { try await origin.loadWhenReleased() } }
                }
                // The load ends only once every caller waits for its process's lookup.
                #expect(await eventually { caches.map { $0.waiting(for: "hot") }.reduce(0, +) == 100 })
                origin.release()
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(values.count == 100 && values.allSatisfy { $0 == "v1" })
            #expect(origin.calls == 1)
            for cache in caches { await cache.shutdown() }
            await otherClient.shutdown()
        }
    }

    @Test func servesStaleWhileRevalidatingAndRefreshesOnce() async throws {
        try await withSharedClient { client, _ async throws in
            let policy = CachePolicy(timeToLive: .milliseconds(200), staleWhileRevalidate: .seconds(30), earlyRefreshBeta: nil)
            let cache = cache(client, policy)
            let origin = FakeOrigin()
            _ = try await cache.value(for: "k") { try await origin.load() }
            try await cache.expire("k")  // past its fresh time, kept for stale serving
            origin.set("v2")
            let values = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await cache.value(for: "k") { try await origin.loadWhenReleased() } } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            // Nobody waited for the loader: everyone got the old value while it was held.
            #expect(values.allSatisfy { $0 == "v1" })
            origin.release()
            await cache.shutdown()  // lets the refresh finish
            #expect(await storedJSON(client, cache, "k") == "\"v2\"")
            #expect(origin.calls == 2)
        }
    }

    @Test func servesStaleWhenTheLoaderFailsIfAllowed() async throws {
        try await withSharedClient { client, _ async throws in
            let policy = CachePolicy(timeToLive: .milliseconds(100), staleIfError: .seconds(30), earlyRefreshBeta: nil)
            let cache = cache(client, policy)
            _ = try await cache.value(for: "k") { "old" }
            try await cache.expire("k")  // past its fresh time, kept for stale serving
            let value: String = try await cache.value(for: "k") { throw OriginDown() }
            #expect(value == "old")
            // The failing origin is not retried at once: the stale value counts as fresh for
            // the retry delay (1 s by default).
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { _ = try await origin.load(); throw OriginDown() } == "old")
            #expect(origin.calls == 0)
        }
    }

    @Test func theLoadersErrorReachesEveryLocalCaller() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let origin = FakeOrigin()
            let errors = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        do {
                            let _: String = try await cache.value(for: "k") {
                                _ = try await origin.loadWhenReleased()
                                throw OriginDown()
                            }
                            return false
                        } catch {
                            return error is OriginDown
                        }
                    }
                }
                // The loader fails only once every caller waits for the lookup.
                #expect(await eventually { cache.waiting(for: "k") == 20 })
                origin.release()
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(errors.count == 20 && errors.allSatisfy { $0 })
        }
    }

    /// Starts a load of `key` whose origin fails once released; returns once it holds the lease.
    func startFailingLoad(_ cache: StampedeCache, _ key: String) async -> (loading: Task<String, any Error>, origin: FakeOrigin) {
        let origin = FakeOrigin()
        let loading = Task {
            try await cache.value(for: key) { () async throws -> String in
                _ = try await origin.loadWhenReleased()
                throw OriginDown()
            }
        }
        await origin.waitForCalls(1)
        return (loading, origin)
    }

    @Test func remoteFollowersAreToldAtOnceWhenTheLoaderFails() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let policy = CachePolicy(waitTimeout: .seconds(30))
            let leader = cache(client, policy, namespace: namespace)
            // The follower's time moves only when the test says: its 30 s wait timeout cannot pass.
            let clock = ManualClock()
            let follower = StampedeCache.onClock(clock, client: otherClient, configuration: .init(namespace: namespace, policy: policy))
            // Subscribed before the storm, as a running service is: a failure published
            // before the follower listened would rightly make it load itself.
            try await follower.prepare()
            let (leading, origin) = await startFailingLoad(leader, "k")
            let following = Task { await stampedeError { _ = try await follower.value(for: "k") { "must not be called" } } }
            await clock.waitForSleepers(1)  // the follower waits for the leader's load
            origin.release()
            // Told by the message, not by the wait timeout: the follower's clock never moved.
            #expect(await following.value?.code == .loadFailedElsewhere)
            _ = try? await leading.value
            await otherClient.shutdown()
        }
    }

    @Test func remoteFollowersGetTheStaleValueWhenTheLoaderFailsIfAllowed() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let policy = CachePolicy(timeToLive: .milliseconds(100), staleIfError: .seconds(30), earlyRefreshBeta: nil, waitTimeout: .seconds(30))
            let leader = cache(client, policy, namespace: namespace)
            let clock = ManualClock()
            let follower = StampedeCache.onClock(clock, client: otherClient, configuration: .init(namespace: namespace, policy: policy))
            try await follower.prepare()
            _ = try await fetch(leader, "k") { "old" }
            try await leader.expire("k")  // past its fresh time, kept for stale serving
            let (leading, origin) = await startFailingLoad(leader, "k")
            let following = Task { try await fetch(follower, "k") { "must not be called" } }
            await clock.waitForSleepers(1)  // the follower waits for the leader's load
            origin.release()
            // Told by the message, not by the wait timeout: the follower's clock never moved.
            #expect(try await following.value == "old")
            #expect(try await leading.value == "old")
            await otherClient.shutdown()
        }
    }

    @Test func aFollowerIsWokenByTheFillNotByItsWaitTimeout() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let policy = CachePolicy(leaseDuration: .seconds(30), waitTimeout: .seconds(30))
            let leader = cache(client, policy, namespace: namespace)
            let clock = ManualClock()
            let follower = StampedeCache.onClock(clock, client: otherClient, configuration: .init(namespace: namespace, policy: policy))
            try await follower.prepare()
            let origin = FakeOrigin()
            origin.set("filled")
            let leading = Task { try await leader.value(for: "k") { try await origin.loadWhenReleased() } }
            await origin.waitForCalls(1)  // the leader holds the lease
            let following = Task { try await fetch(follower, "k") { "must not be called" } }
            await clock.waitForSleepers(1)  // the follower waits for the leader's fill
            origin.release()
            // Woken by the fill: the follower's clock never moved, so no timeout woke it.
            #expect(try await following.value == "filled")
            _ = try await leading.value
            await otherClient.shutdown()
        }
    }

    @Test func cachesNoSuchValueForItsOwnTime() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client, CachePolicy(negativeTimeToLive: .seconds(30)))
            let calls = FakeOrigin()
            for _ in 0..<3 {
                let value: String? = try await cache.valueIfPresent(for: "absent") { () async throws -> String? in
                    _ = try await calls.load()
                    return nil
                }
                #expect(value == nil)
            }
            #expect(calls.calls == 1)
        }
    }

    @Test func rejectsTheFillOfALoadThatAnInvalidationOvertook() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let origin = FakeOrigin()
            let loading = Task { try await cache.value(for: "k") { try await origin.loadWhenReleased() } }
            await origin.waitForCalls(1)  // the load holds the lease
            try await cache.invalidate("k")
            origin.release()
            // The caller still gets its value, but the cache does not keep it; the rejected
            // fill frees the lease at once, so the next read loads again without waiting it out.
            #expect(try await loading.value == "v1")
            #expect(try await client.send("EXISTS", RedisArgument(cache.keys(for: "k").lock)).int == 0, "the 10 s lease is still held")
            origin.set("v2")
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v2")
            #expect(origin.calls == 2)
        }
    }

    @Test func expireKeepsTheValueForStaleServing() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client, CachePolicy(staleWhileRevalidate: .seconds(30), earlyRefreshBeta: nil))
            let origin = FakeOrigin()
            _ = try await cache.value(for: "k") { try await origin.load() }
            try await cache.expire("k")
            origin.set("v2")
            // Served stale while the refresh is held.
            #expect(try await fetch(cache, "k") { try await origin.loadWhenReleased() } == "v1")
            origin.release()
            await cache.shutdown()  // lets the refresh finish
            #expect(try await fetch(cache, "k") { "unused" } == "v2")
        }
    }

    @Test func aForeignValueAtTheKeyIsAMissAndIsOverwrittenAndCounted() async throws {
        try await withSharedClient { client, _ async throws in
            let namespace = uniquePrefix()
            let metrics = TestMetrics()
            let cache = StampedeCache(client: client, configuration: .init(namespace: namespace), metricsFactory: metrics)
            try await client.send("SET", RedisArgument(CacheFormat.Keys(namespace: namespace, key: "k").entry), "not an envelope")
            #expect(try await fetch(cache, "k") { "loaded" } == "loaded")
            try await client.send("HSET", RedisArgument(CacheFormat.Keys(namespace: namespace, key: "j").entry), "v", "x", "m", "9:1:2:3:0")  // another format
            #expect(try await fetch(cache, "j") { "loaded" } == "loaded")
            #expect(try await fetch(cache, "j") { "again" } == "loaded")
            #expect(try metrics.cacheCounter("corrupt_entries", of: cache).totalValue == 2)
        }
    }

    @Test("a stale entry is served when the loader fails, and the failing origin is not retried at once")
    func staleIfErrorServesAndHoldsOffRetries() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client, CachePolicy(
                timeToLive: .seconds(60), staleIfError: .seconds(30), retryAfterError: .seconds(30), earlyRefreshBeta: nil))
            try await plantEntry(client, cache, "k", value: "old", freshFor: -1_000, keptFor: 60_000)
            let value: String = try await cache.value(for: "k") { throw OriginDown() }
            #expect(value == "old")
            // Served as fresh for the retry delay.
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { _ = try await origin.load(); throw OriginDown() } == "old")
            #expect(origin.calls == 0)
        }
    }

    @Test func aValueOfAnotherTypeIsAClearError() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            _ = try await cache.value(for: "k") { "text" }
            let error = await stampedeError { _ = try await cache.value(for: "k", as: [Int].self) { [1] } }
            #expect(error?.code == .corruptEntry)
        }
    }

    @Test func rejectsBadKeysAndOversizedValues() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix(), maximumValueSize: 1000))
            #expect(await stampedeError { _ = try await cache.value(for: "") { "x" } }?.code == .invalidKey)
            let long = String(repeating: "k", count: StampedeCache.maximumKeyLength + 1)
            #expect(await stampedeError { _ = try await cache.value(for: long) { "x" } }?.code == .invalidKey)
            let big = [UInt8](repeating: 1, count: 1001)
            let tooLarge = await stampedeError { _ = try await cache.value(for: "big") { big } }
            #expect(tooLarge?.code == .valueTooLarge)
            #expect(tooLarge?.message == "the value for 'big' has 1001 bytes; the maximum is 1000")
            // The policy's checks build their messages only when one fails; they still say what is wrong.
            let badPolicy = await stampedeError { _ = try await cache.value(for: "k", policy: .init(timeToLive: .zero)) { "x" } }
            #expect(badPolicy?.code == .invalidArgument)
            #expect(badPolicy?.message == "timeToLive must be at least 1 ms, got 0.0 seconds")
            let shortLease = await stampedeError { _ = try await cache.value(for: "k", policy: .init(leaseDuration: .milliseconds(2))) { "x" } }
            #expect(shortLease?.message == "leaseDuration must be at least 3 ms, got 0.002 seconds")
            // A bad policy in the configuration is checked once, and fails every lookup that
            // uses it; a lookup with a good policy of its own goes on.
            let configured = StampedeCache(client: client, configuration: .init(
                namespace: uniquePrefix(), policy: .init(staleIfError: .seconds(-1))))
            for _ in 0..<2 {
                let error = await stampedeError { _ = try await configured.value(for: "k") { "x" } }
                #expect(error?.code == .invalidArgument)
                #expect(error?.message == "staleIfError must not be negative")
            }
            #expect(try await configured.value(for: "k", policy: .init()) { "y" } == "y")
        }
    }

    @Test func aHardTimeoutAbandonsTheLoad() async throws {
        try await withSharedClient { client, _ async throws in
            let clock = ManualClock()
            let cache = StampedeCache.onClock(clock, client: client, configuration: .init(
                namespace: uniquePrefix(), policy: CachePolicy(loaderHardTimeout: .milliseconds(200))))
            let origin = FakeOrigin()
            let caller = Task { await stampedeError { _ = try await fetch(cache, "k") { try await origin.loadWhenReleased() } } }
            await origin.waitForCalls(1)
            await clock.waitForSleepers(2)  // the lease's watchdog and the hard timeout
            clock.advance(by: .milliseconds(200))
            #expect(await caller.value?.code == .loaderTimedOut)
            #expect(origin.cancelled == 1, "the load was abandoned")
        }
    }

    @Test func aSoftTimeoutServesStaleAndTheLoadStillFills() async throws {
        try await withSharedClient { client, _ async throws in
            let policy = CachePolicy(timeToLive: .milliseconds(100), staleIfError: .seconds(30), earlyRefreshBeta: nil,
                                     loaderSoftTimeout: .milliseconds(100))
            let clock = ManualClock()
            let cache = StampedeCache.onClock(clock, client: client, configuration: .init(namespace: uniquePrefix(), policy: policy))
            _ = try await cache.value(for: "k") { "old" }
            try await cache.expire("k")  // past its fresh time, kept for stale serving
            let origin = FakeOrigin()
            origin.set("new")
            let caller = Task { try await fetch(cache, "k") { try await origin.loadWhenReleased() } }
            await origin.waitForCalls(1)
            await clock.waitForSleepers(2)  // the soft timeout and the lease's watchdog
            clock.advance(by: .milliseconds(100))
            #expect(try await caller.value == "old")
            origin.release()
            await cache.shutdown()  // lets the load finish
            #expect(await storedJSON(client, cache, "k") == "\"new\"")
        }
    }

    @Test("fence keys expire (a day past their entry or their last use) and a fence created anew is above the old one")
    func fencesExpireAndNeverRepeat() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client, CachePolicy(timeToLive: .seconds(60), earlyRefreshBeta: nil))
            let fenceKey = RedisArgument(cache.keys(for: "k").fence)
            _ = try await fetch(cache, "k") { "v1" }
            let day = CacheScripts.fenceKeptMilliseconds
            let afterFill = try await client.send("PTTL", fenceKey).int ?? -1
            #expect(afterFill > day && afterFill <= day + 60_000, "kept a day past the entry: \(afterFill) ms")
            let first = try await client.send("GET", fenceKey).int!

            // The fence expires (deleted here); the next lease starts above every old value.
            try await client.send("DEL", fenceKey)
            try await cache.invalidate("k")
            let afterInvalidate = try await client.send("PTTL", fenceKey).int ?? -1
            #expect(afterInvalidate > day - 60_000 && afterInvalidate <= day)
            let second = try await client.send("GET", fenceKey).int!
            #expect(second > first)
        }
    }

    @Test("a loader whose fence expired and was created anew during the load does not store its value")
    func aFillAfterTheFenceExpiredIsRejected() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let origin = FakeOrigin()
            let fenceKey = RedisArgument(cache.keys(for: "k").fence)
            let caller = Task { try await fetch(cache, "k") { try await origin.loadWhenReleased() } }
            await origin.waitForCalls(1)  // the load holds the lease
            #expect(try await client.send("EXISTS", fenceKey).int == 1)
            // The fence expires, and an invalidation creates it again: counting from 1 again,
            // it could land on the loader's own fence and let its fill through.
            try await client.send("DEL", fenceKey)
            try await cache.invalidate("k")
            origin.release()
            #expect(try await caller.value == "v1", "the callers still get the loaded value")
            #expect(await storedJSON(client, cache, "k") == nil, "but it was not stored")
            origin.set("v2")
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v2")
            #expect(origin.calls == 2)
        }
    }

    @Test func aCancelledCallerDoesNotCancelTheLoad() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let origin = FakeOrigin()
            let caller = Task { try await cache.value(for: "k") { try await origin.loadWhenReleased() } }
            await origin.waitForCalls(1)
            caller.cancel()
            await #expect(throws: CancellationError.self) { _ = try await caller.value }
            origin.release()
            await cache.shutdown()  // lets the load finish
            #expect(try await fetch(cache, "k") { "unused" } == "v1")
            #expect(origin.calls == 1)
            #expect(origin.cancelled == 0)
        }
    }
}

@Suite("StampedeCache without Redis", .serialized, .timeLimit(.minutes(2)))
struct CacheWithoutRedisTests {
    @Test func loadsLocallyWhenRedisIsDownOrFailsIfTold() async throws {
        let server = try await RedisServer.start()
        var configuration = try RedisConfiguration(url: server.url)
        configuration.connectTimeout = .milliseconds(300)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
        try await withClient(configuration) { client async throws in
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix()))
            #expect(try await fetch(cache, "k") { "cached" } == "cached")
            server.kill()
            let origin = FakeOrigin()
            let values = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<20 { group.addTask { try await cache.value(for: "k") { try await origin.loadWhenReleased() } } }
                // The load ends only once every caller waits for it.
                #expect(await eventually { cache.waiting(for: "k") == 20 })
                origin.release()
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(values.allSatisfy { $0 == "v1" })
            #expect(origin.calls == 1, "one call per process and key")
            let error = await stampedeError {
                _ = try await cache.value(for: "k", policy: .init(whenRedisUnavailable: .fail)) { "x" }
            }
            #expect(error?.code == .redisUnavailable)
            // Back: the cache is used again.
            try await server.restart()
            #expect(await eventually { (try? await client.send("PING")) == .simpleString("PONG") })
            #expect(try await fetch(cache, "k") { "after" } == "after")
            #expect(try await fetch(cache, "k") { "not called" } == "after")
            await cache.shutdown()
        }
        server.stop()
    }
}
