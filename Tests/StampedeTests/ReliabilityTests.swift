import Foundation
import NIOPosix
@_spi(Benchmarks) @testable import Stampede
@testable import StampedeRedis
import StampedeTestSupport
import Synchronization
import Testing

/// What no data in Redis, no invalidation and no outage may do to a caller: crash it, hang
/// it, serve it a value older than an invalidation it could know of, or turn into calls to
/// the origin.
@Suite("Reliability", .timeLimit(.minutes(2)))
struct ReliabilityTests {
    func cache(_ client: RedisClient, _ policy: CachePolicy = CachePolicy(earlyRefreshBeta: nil), namespace: String = uniquePrefix(),
               nearCache: StampedeCache.NearCacheOptions? = nil) -> StampedeCache {
        StampedeCache(client: client, configuration: .init(namespace: namespace, policy: policy, nearCache: nearCache))
    }

    // MARK: Foreign data under the key's names

    @Test("numbers in an entry's metadata that no Int holds are a miss, replaced, never a crash",
          arguments: ["2:99999999999999999999:99999999999999999999:0:0", "2:9223372036854775808:9223372036854775808:0:0",
                      "2:1000000000000000:1000000000000000:0:0", "2:1:1:99999999999999999999:0"])
    func numbersTooLargeInTheMetadataAreAMiss(meta: String) async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let entryKey = RedisArgument(cache.keys(for: "k").entry)
            try await client.send("HSET", entryKey, "v", "\"planted\"", "f", "1", "m", RedisArgument(meta))
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            #expect(origin.calls == 1, "replaced by the load, then a hit")
            await cache.shutdown()
        }
    }

    @Test("a lock without expiry is taken over at once, whatever its type", .timeLimit(.minutes(1)))
    func aLockWithoutExpiryIsTakenOver() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let lockKey = RedisArgument(cache.keys(for: "k").lock)
            try await client.send("SET", lockKey, "left-behind")
            #expect(try await fetch(cache, "k") { "loaded" } == "loaded")
            #expect(try await fetch(cache, "k") { "not called" } == "loaded")
            #expect(try await client.send("EXISTS", lockKey).int == 0, "released after the fill")

            try await client.send("RPUSH", RedisArgument(cache.keys(for: "k2").lock), "x")
            #expect(try await fetch(cache, "k2") { "loaded" } == "loaded")
            await cache.shutdown()
        }
    }

    @Test("a caller waits for another's load at most the wait timeout in all, then does as the policy says", .timeLimit(.minutes(1)))
    func aWaitEndsAtTheWaitTimeout() async throws {
        try await withSharedClient { client, _ async throws in
            // A lease that outlives the wait, held by a loader that never finishes.
            let cache = cache(client)
            try await client.send("SET", RedisArgument(cache.keys(for: "k").lock), "elsewhere", "PX", "60000")
            let short = CachePolicy(earlyRefreshBeta: nil, waitTimeout: .milliseconds(300))
            let error = await stampedeError { _ = try await cache.value(for: "k", policy: short) { "not called" } }
            #expect(error?.code == .waitTimedOut)

            var local = short
            local.whenWaitTimesOut = .loadLocally
            #expect(try await cache.value(for: "k", policy: local) { "loaded here" } == "loaded here")
            #expect(await storedJSON(client, cache, "k") == nil, "without the lease, nothing is stored")

            // A stale value within stale-if-error is served instead.
            let other = self.cache(client, namespace: cache.configuration.namespace)
            try await client.send("DEL", RedisArgument(cache.keys(for: "s").lock))
            _ = try await other.value(for: "s", policy: .init(timeToLive: .milliseconds(50), staleIfError: .seconds(60), earlyRefreshBeta: nil)) { "old" }
            try await other.expire("s")  // past its fresh time, kept for stale serving
            try await client.send("SET", RedisArgument(cache.keys(for: "s").lock), "elsewhere", "PX", "60000")
            var failSafe = short
            failSafe.staleIfError = .seconds(60)
            #expect(try await cache.value(for: "s", policy: failSafe) { "not called" } == "old")
            await cache.shutdown()
        }
    }

    @Test("with the default policy, a waiter outlives the lease of a leader that died holding it, and takes over",
          .timeLimit(.minutes(1)))
    func aDefaultWaiterOutlivesADeadLeadersLease() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let lease = CachePolicy().leaseDuration
            try await client.send("SET", RedisArgument(cache.keys(for: "k").lock), "died", "PX", RedisArgument(lease.milliseconds))
            #expect(try await cache.value(for: "k", policy: .init()) { "taken over" } == "taken over")
            await cache.shutdown()
        }
    }

    @Test("times past what an entry can store are refused")
    func timesPastWhatAnEntryStoresAreRefused() {
        let century = Duration.seconds(101 * 366 * 86_400)
        for policy in [CachePolicy(timeToLive: century), CachePolicy(staleWhileRevalidate: century), CachePolicy(staleIfError: century),
                       CachePolicy(jitter: century), CachePolicy(negativeTimeToLive: century)] {
            #expect(throws: StampedeError(.invalidArgument, "")) { try policy.validate() }
        }
        #expect(throws: Never.self) { try CachePolicy(timeToLive: .seconds(99 * 365 * 86_400)).validate() }
    }

    @Test("a change is heard before the near entry goes: a lookup that keeps its entry afterwards sees the change")
    func theGenerationMovesBeforeTheNearEntryGoes() async throws {
        try await withSharedClient { client, _ async throws in
            let seenWhenDropped = Mutex<Int?>(nil)
            let box = Mutex<CacheEvents?>(nil)
            let events = CacheEvents(client: client, channel: uniquePrefix(), logger: .init(label: "test"), clock: SystemClock(), notifications: {},
                                     changed: { _, key in seenWhenDropped.withLock { $0 = box.withLock { $0 }?.generation(of: key) } })
            box.withLock { $0 = events }
            let before = events.watch("k")
            events.heard(.invalidated, key: "k", fill: nil)
            #expect(seenWhenDropped.withLock { $0 } == before + 1)
            events.unwatch("k")
        }
    }

    @Test("a lock of RedisMutex without expiry is taken over, and a fence of another type is replaced", .timeLimit(.minutes(1)))
    func mutexRepairsForeignLockAndFence() async throws {
        try await withSharedClient { client, _ async throws in
            let mutex = RedisMutex(client: client)
            let name = uniquePrefix()
            let keys = mutex.keys(for: name)
            try await client.send("SET", RedisArgument(keys.lock), "left-behind")
            try await client.send("RPUSH", RedisArgument(keys.fence), "x")
            let fence = try await mutex.withLock(name, options: .init(maximumWait: .seconds(30))) { $0.fence }
            #expect(fence.value > 0)
            let next = try await mutex.withLock(name) { $0.fence }
            #expect(next.value > fence.value)
        }
    }

    @Test("a fence of another type is replaced: the cache keeps working and invalidate succeeds")
    func aFenceOfAnotherTypeIsReplaced() async throws {
        try await withSharedClient { client, _ async throws in
            let cache = cache(client)
            let fenceKey = RedisArgument(cache.keys(for: "k").fence)
            try await client.send("RPUSH", fenceKey, "x")
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            #expect(origin.calls == 1, "stored, then a hit")
            #expect(try await client.send("TYPE", fenceKey) == .simpleString("string"))

            try await client.send("DEL", fenceKey)
            try await client.send("SET", fenceKey, "not a number")
            try await cache.invalidate("k")
            #expect(try await client.send("GET", fenceKey).int != nil)
            try await client.send("DEL", fenceKey)
            try await client.send("HSET", fenceKey, "a", "b")
            try await cache.invalidate("k")
            origin.set("v2")
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v2")
            await cache.shutdown()
        }
    }

    // MARK: Invalidation across processes

    @Test("a caller that arrives after the invalidation message does not join a lookup that started before it")
    func aReadAfterAnInvalidationDoesNotJoinAnEarlierLookup() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            // A second client and cache stand for a second process (own single flight, own subscription).
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let writer = cache(client, namespace: namespace)
            let reader = cache(otherClient, namespace: namespace)
            try await reader.prepare()
            let origin = FakeOrigin()
            let gate = Gate()
            // The reader's lookup reads the origin before the write, then stalls.
            let early = Task { try await fetch(reader, "k") { let value = try await origin.load(); await gate.wait(); return value } }
            #expect(await eventually { origin.calls == 1 })
            let heard = reader.events.generation(of: "k") ?? 0

            origin.set("v2")
            try await writer.invalidate("k")
            #expect(await eventually { (reader.events.generation(of: "k") ?? 0) > heard }, "the reader heard of it")

            let late = Task {
                try await reader.value(for: "k", policy: .init(earlyRefreshBeta: nil, waitTimeout: .seconds(60))) { try await origin.load() }
            }
            // It joined the earlier lookup, or started its own (the earlier one was forgotten).
            #expect(await eventually {
                let waiting = reader.flights.waiting(for: ExactKey("k"))
                return waiting >= 1
            })
            gate.open()
            #expect(try await early.value == "v1", "a caller that came before the invalidation may get the old value")
            #expect(try await late.value == "v2")
            await reader.shutdown()
            await otherClient.shutdown()
        }
    }

    // MARK: Outage

    @Test("while Redis is down, a value loaded without it is kept for its time to live, and dropped when Redis is back")
    func anOutageCallsTheOriginOncePerKeyAndTimeToLive() async throws {
        let server = try await RedisServer.start()
        var configuration = try RedisConfiguration(url: server.url)
        configuration.connectTimeout = .milliseconds(300)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
        try await withClient(configuration) { client async throws in
            let cache = cache(client)
            #expect(try await fetch(cache, "k") { "cached" } == "cached")
            server.kill()
            let origin = FakeOrigin()
            for round in 0..<3 {
                let values = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<20 { group.addTask { try await fetch(cache, "k") { try await origin.loadWhenReleased() } } }
                    if round == 0 {
                        // The first load ends only once every caller of the round waits for it.
                        #expect(await eventually { cache.waiting(for: "k") == 20 })
                        origin.release()
                    }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(values.allSatisfy { $0 == "v1" })
            }
            #expect(origin.calls == 1, "one call per process, key and time to live")
            #expect(cache.outageValues.count == 1)
            // An invalidation in this process drops the kept value, even though it fails.
            let failed = await stampedeError { try await cache.invalidate("k") }
            #expect(failed?.code == .redisUnavailable)
            origin.set("v2")
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v2")
            #expect(origin.calls == 2)
            origin.set("v1")
            // Each key its own call; "no such value" is kept too.
            #expect(try await cache.valueIfPresent(for: "absent", as: String.self) { _ = try await origin.load(); return nil } == nil)
            #expect(try await cache.valueIfPresent(for: "absent", as: String.self) { _ = try await origin.load(); return nil } == nil)
            #expect(origin.calls == 3)

            try await server.restart()
            #expect(await eventually { (try? await client.send("PING")) == .simpleString("PONG") })
            #expect(try await fetch(cache, "k") { "after" } == "after")
            #expect(cache.outageValues.count == 0, "dropped once Redis answered")
            await cache.shutdown()
        }
        server.stop()
    }

    @Test("values kept during an outage expire after their time to live")
    func outageValuesExpire() {
        let values = OutageValues(capacity: 2)
        let now = ContinuousClock.now
        values.keep(.init(bytes: [1], expires: now + .seconds(1)), for: ExactKey("a"), from: values.startLoad())
        #expect(values.entry(for: ExactKey("a"), now: now)?.bytes == [1])
        #expect(values.entry(for: ExactKey("a"), now: now + .seconds(1)) == nil)
        for key in ["b", "c", "d"] { values.keep(.init(bytes: nil, expires: now + .seconds(1)), for: ExactKey(key), from: values.startLoad()) }
        #expect(values.count == 2, "bounded")
        values.redisAnswered(for: ExactKey("b"))
        #expect(values.count == 0)
        #expect(OutageValues(capacity: 0).entry(for: ExactKey("a"), now: now) == nil)
    }

    @Test("a load that started without Redis keeps nothing when Redis answered before it ended")
    func aLoadOverlappingRedisReturnKeepsNothing() {
        let values = OutageValues(capacity: 10)
        let now = ContinuousClock.now
        let early = values.startLoad()
        values.redisAnswered(for: ExactKey("b"))
        values.keep(.init(bytes: [1], expires: now + .seconds(60)), for: ExactKey("a"), from: early)
        #expect(values.count == 0)
        let later = values.startLoad()
        values.keep(.init(bytes: [2], expires: now + .seconds(60)), for: ExactKey("a"), from: later)
        #expect(values.entry(for: ExactKey("a"), now: now)?.bytes == [2])
        values.remove(ExactKey("a"))
        #expect(values.count == 0)
    }

    @Test("on a cluster, Redis answering for one hash slot gives up what was kept and is being loaded for that slot only")
    func outageValuesPerSlot() {
        let values = OutageValues(capacity: 10, onePart: false)
        let now = ContinuousClock.now
        values.keep(.init(bytes: [1], expires: now + .seconds(60)), for: ExactKey("a"), from: values.startLoad(part: 1))
        values.keep(.init(bytes: [2], expires: now + .seconds(60)), for: ExactKey("b"), from: values.startLoad(part: 2))
        let loadingC = values.startLoad(part: 2)
        let loadingD = values.startLoad(part: 3)
        // Another slot's master answers, again and again: slot 1's value stays.
        for _ in 0..<5 { values.redisAnswered(for: ExactKey("x"), part: 4) }
        #expect(values.entry(for: ExactKey("a"), now: now)?.bytes == [1])
        // Slot 2 answers for another of its keys: its kept value and its load under way are given up.
        values.redisAnswered(for: ExactKey("y"), part: 2)
        #expect(values.entry(for: ExactKey("b"), now: now) == nil)
        values.keep(.init(bytes: [3], expires: now + .seconds(60)), for: ExactKey("c"), from: loadingC)
        #expect(values.entry(for: ExactKey("c"), now: now) == nil)
        values.keep(.init(bytes: [4], expires: now + .seconds(60)), for: ExactKey("d"), from: loadingD)
        #expect(values.entry(for: ExactKey("d"), now: now)?.bytes == [4])
        #expect(values.entry(for: ExactKey("a"), now: now)?.bytes == [1])
        // A failed load keeps nothing and holds nothing up.
        values.abandon(values.startLoad(part: 1))
        values.redisAnswered(for: ExactKey("a"), part: 1)
        values.redisAnswered(for: ExactKey("d"), part: 3)
        #expect(values.count == 0)
    }

    // MARK: Keys as Redis sees them

    @Test("keys equal as Swift strings but of different bytes are different keys in every in-process map")
    func keysAreComparedByTheirBytes() async throws {
        #expect(ExactKey("\u{e9}") != ExactKey("e\u{301}"))
        #expect(ExactKey("\u{e9}") == ExactKey("\u{e9}"))
        #expect(Set([ExactKey("\u{e9}"), ExactKey("e\u{301}"), ExactKey(String("\u{e9}"))]).count == 2)
        try await withSharedClient { client, _ async throws in
            let cache = cache(client, nearCache: .init())
            try await cache.prepare()
            #expect(try await fetch(cache, "\u{e9}") { "composed" } == "composed")
            #expect(try await fetch(cache, "\u{e9}") { "not called" } == "composed")
            #expect(try await fetch(cache, "e\u{301}") { "decomposed" } == "decomposed")
            #expect(try await fetch(cache, "e\u{301}") { "not called" } == "decomposed")
            #expect(try await fetch(cache, "\u{e9}") { "not called" } == "composed")
            await cache.shutdown()
        }
    }
}

/// Holds callers until opened.
final class Gate: Sendable {
    private let opened = Mutex(false)
    private let signal = AsyncSignal()

    func open() {
        opened.withLock { $0 = true }
        signal.notify()
    }

    func wait() async {
        while true {
            let seen = signal.generation
            if opened.withLock({ $0 }) { return }
            await signal.wait(after: seen, until: .now + .seconds(60), clock: SystemClock())
        }
    }
}

/// Holds its parties, spinning, until all of them arrived: a barrier that never suspends.
/// Bounded, so that a pool with fewer threads than parties fails the test, not hangs it.
final class SpinBarrier: Sendable {
    private let arrived = Atomic<Int>(0)
    private let parties: Int

    init(parties: Int) { self.parties = parties }

    /// Whether every party arrived within `limit`.
    func arriveAndSpin(limit: Duration = .seconds(10)) -> Bool {
        arrived.add(1, ordering: .relaxed)
        let deadline = ContinuousClock.now + limit
        while arrived.load(ordering: .relaxed) < parties {
            if ContinuousClock.now > deadline { return false }
        }
        return true
    }
}
