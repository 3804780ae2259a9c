import Dispatch
import Foundation
import NIOPosix
@_spi(Benchmarks) @testable import Stampede
@testable import StampedeRedis
import StampedeTestSupport
import Synchronization
import Testing

/// Serialized: two of these tests keep every cooperative thread busy or count what a
/// starved process does, and must not run beside each other.
@Suite("Hot keys", .serialized, .timeLimit(.minutes(2)))
struct HotKeyTests {
    func nearCache(_ client: RedisClient, namespace: String, timeToLive: Duration = .seconds(60), clock: any MonotonicClock = SystemClock()) -> StampedeCache {
        StampedeCache.onClock(clock, client: client, configuration: .init(
            namespace: namespace, policy: .init(timeToLive: timeToLive, earlyRefreshBeta: nil),
            nearCache: .init(capacity: 100, timeToLive: .seconds(30))))
    }

    /// Fills `key` through a cache without a near cache, before the near cache under test
    /// subscribes: the fill's message then cannot reach it after its first read and drop the
    /// entry that read keeps.
    func fillBeforeSubscribing(
        _ client: RedisClient, namespace: String, _ key: String, _ value: String, timeToLive: Duration = .seconds(60)
    ) async throws {
        let filler = StampedeCache(client: client, configuration: .init(
            namespace: namespace, policy: .init(timeToLive: timeToLive, earlyRefreshBeta: nil)))
        _ = try await fetch(filler, key) { value }
    }

    @Test func aThousandConcurrentReadsOfAFreshKeyShareOneRoundTrip() async throws {
        try await withPrivateServer { server in
            let configuration = try RedisConfiguration(url: server.url)
            try await withClient(configuration) { control async throws in
                let writer = StampedeCache(client: control, configuration: .init(namespace: "n"))
                _ = try await fetch(writer, "hot") { "v" }
                // A client of its own, so that its count is this storm's alone, warmed up.
                let reader = try RedisClient(configuration: configuration)
                let cache = StampedeCache(client: reader, configuration: .init(namespace: "n", policy: .init(earlyRefreshBeta: nil)))
                try await cache.prepare()
                let before = reader.commandsSent
                // Redis holds every command for a moment, so all thousand reads overlap.
                try await control.send("CLIENT", "PAUSE", "300", "ALL")
                let values = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<1_000 { group.addTask { try await fetch(cache, "hot") { "unused" } } }
                    return try await group.reduce(into: [String]()) { $0.append($1) }
                }
                #expect(values.count == 1_000 && values.allSatisfy { $0 == "v" })
                // One round trip for a thousand reads: TIME and HMGET, written together.
                #expect(reader.commandsSent - before == 2)
                await cache.shutdown()
                await reader.shutdown()
            }
        }
    }

    @Test("after one hit has read Redis's clock, a hit costs one command, and an entry past its fresh time is not served")
    func aHitIsOneCommandOnceTheClockIsRead() async throws {
        try await withSharedClient { client, server async throws in
            let reader = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let cache = StampedeCache(client: reader, configuration: .init(
                namespace: uniquePrefix(), policy: .init(timeToLive: .seconds(600), earlyRefreshBeta: nil)))
            let origin = FakeOrigin()
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            var before = reader.commandsSent
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v1")
            let first = reader.commandsSent - before
            #expect(first == 1 || first == 2, "HMGET, with TIME when the clock was not read yet")
            before = reader.commandsSent
            let started = ContinuousClock.now
            for _ in 0..<10 { #expect(try await fetch(cache, "k") { try await origin.load() } == "v1") }
            // One HMGET per hit, and a TIME with one of them each half second the hits took
            // (a loaded machine can take more than one); a hit whose clock reading aged past
            // its second while the HMGET was out asks the lease-get script instead (one more).
            let rereads = Int((ContinuousClock.now - started) / (RedisClock.validity / 2)) + 1
            let sent = reader.commandsSent - before
            #expect(sent >= 10 && sent <= 10 + 2 * rereads, "\(sent) commands for 10 hits")
            #expect(origin.calls == 1)

            // Past its fresh time by Redis's clock, an entry is reloaded, not served.
            let short = CachePolicy(timeToLive: .milliseconds(500), earlyRefreshBeta: nil)
            let value = { (load: String) in try await cache.value(for: "short", policy: short) { load } }
            #expect(try await value("old") == "old")
            // Written past its fresh time by Redis's clock (as 600 ms later), and kept there.
            try await plantEntry(client, cache, "short", value: "old", freshFor: -100, keptFor: 60_000)
            #expect(try await value("new") == "new")
            await cache.shutdown()
            await reader.shutdown()
        }
    }

    @Test("Redis's clock read locally: within the sample's error, later rather than earlier, trusted for a second")
    func redisClockEstimate() {
        let clock = RedisClock()
        let start = ContinuousClock.now
        #expect(clock.now(at: start) == nil, "no sample yet")
        // TIME said 1,000,000 ms somewhere within a 4 ms round trip (sent at +0, back at +4).
        clock.record(redisMilliseconds: 1_000_000, sentAt: start, receivedAt: start + .milliseconds(4))
        // Ten milliseconds after the reply, Redis's time is 1,000,010 to 1,000,014 (TIME ran
        // between +0 and +4); the estimate must not be earlier than the latest possible.
        let estimate = clock.now(at: start + .milliseconds(14))!
        #expect(estimate >= 1_000_014 && estimate <= 1_000_014 + Int(RedisClock.driftAllowance) + 1)
        #expect(clock.now(at: start + .milliseconds(4) + RedisClock.validity) == nil, "a second-old sample is not used")
        // A young, rougher sample does not replace a more exact one; a later one does.
        clock.record(redisMilliseconds: 5_000_000, sentAt: start + .milliseconds(100), receivedAt: start + .milliseconds(200))
        #expect(clock.now(at: start + .milliseconds(250))! < 1_001_000)
        clock.record(redisMilliseconds: 5_000_000, sentAt: start + .milliseconds(600), receivedAt: start + .milliseconds(700))
        #expect(clock.now(at: start + .milliseconds(750))! >= 5_000_050 + 50)
    }

    @Test("one hit renews Redis's clock when its sample is half a second old; the others go on with it")
    func oneHitRenewsTheClock() {
        let clock = RedisClock()
        let start = ContinuousClock.now
        #expect(clock.shouldRead(at: start) && clock.shouldRead(at: start), "no sample: every hit reads")
        clock.record(redisMilliseconds: 1_000_000, sentAt: start, receivedAt: start + .milliseconds(2))
        #expect(!clock.shouldRead(at: start + .milliseconds(400)))
        let half = start + .milliseconds(2) + RedisClock.validity / 2
        #expect(clock.shouldRead(at: half), "the first hit past half the validity renews")
        #expect(!clock.shouldRead(at: half + .milliseconds(1)), "the others use the sample meanwhile")
        #expect(clock.now(at: half + .milliseconds(1)) != nil)
        // A renewal whose reply never came is taken on again a quarter of the validity later.
        #expect(clock.shouldRead(at: half + RedisClock.validity / 4))
        clock.record(redisMilliseconds: 1_000_600, sentAt: half + .milliseconds(250), receivedAt: half + .milliseconds(252))
        #expect(!clock.shouldRead(at: half + .milliseconds(300)), "renewed")
        #expect(clock.shouldRead(at: half + .milliseconds(252) + RedisClock.validity), "a lapsed sample: every hit reads")
        #expect(clock.shouldRead(at: half + .milliseconds(252) + RedisClock.validity))
    }

    @Test("a steady hit storm reads Redis's clock twice a second, not once per hit in flight when the sample ages")
    func aHitStormReadsTheClockTwiceASecond() async throws {
        try await withPrivateServer { server in
            let configuration = try RedisConfiguration(url: server.url)
            try await withClient(configuration) { control async throws in
                let cache = StampedeCache(client: control, configuration: .init(
                    namespace: "n", policy: .init(timeToLive: .seconds(600), earlyRefreshBeta: nil)))
                for index in 0..<64 { _ = try await fetch(cache, "k\(index)") { "v" } }
                let before = try await timeCalls(control)
                let clock = ContinuousClock()
                let started = clock.now
                // 64 tasks, each with a hit always in flight, for two and a half seconds.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<64 {
                        group.addTask {
                            while clock.now - started < .milliseconds(2_500) {
                                let value = try await fetch(cache, "k\(task)") { "unused" }
                                #expect(value == "v")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let elapsed = clock.now - started
                let reads = try await timeCalls(control) - before
                // One renewal each half second, and one for the part-second at either end;
                // and, should the machine starve this process past half a second, up to two
                // lapses (each up to a TIME per hit in flight). Renewed only when the sample
                // lapsed, the hits in flight (64 here) would all carry TIME every second: 256
                // in this test.
                let allowed = Int(elapsed / (RedisClock.validity / 2)) + 2 + 2 * 64
                #expect(reads >= 1 && reads <= allowed, "\(reads) TIME commands in \(elapsed)")
                await cache.shutdown()
            }
        }
    }

    /// How many TIME commands Redis has run (scripts' included), from `INFO commandstats`.
    private func timeCalls(_ client: RedisClient) async throws -> Int {
        let info = try await client.send("INFO", "commandstats").string ?? ""
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_time:") }) else { return 0 }
        let calls = line.split(separator: ",").first { $0.contains("calls=") }?.split(separator: "=").last
        return calls.flatMap { Int($0) } ?? 0
    }

    @Test("a caller on an actor gets its near-cache hits without leaving the actor")
    func nearHitsStayOnTheCallersActor() async throws {
        try await withSharedClient { client, _ async throws in
            let namespace = uniquePrefix()
            try await fillBeforeSubscribing(client, namespace: namespace, "k", "v")
            let cache = nearCache(client, namespace: namespace)
            try await cache.prepare()
            let caller = CountingActor()
            #expect(try await caller.values(of: "k", from: cache, count: 1) == ["v"])  // read from Redis, kept near
            let before = caller.executor.jobs
            #expect(try await caller.values(of: "k", from: cache, count: 100).allSatisfy { $0 == "v" })
            // One job to enter the actor; a lookup that went to the global executor would
            // come back through the actor's executor once per call.
            #expect(caller.executor.jobs - before <= 2, "\(caller.executor.jobs - before) jobs for 100 near hits")
            await cache.shutdown()
        }
    }

    @Test func theNearCacheServesWithoutRedisUntilAFillElsewhereDropsIt() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            // On a clock that never moves, the near entry cannot expire: only the message drops it.
            let here = nearCache(client, namespace: namespace, clock: ManualClock())
            let elsewhere = StampedeCache(client: otherClient, configuration: .init(namespace: namespace, policy: .init(earlyRefreshBeta: nil)))
            // Filled before this cache subscribes, so that the fill's own message cannot
            // arrive after the first read and drop the entry it just kept.
            _ = try await fetch(elsewhere, "k") { "v1" }
            try await here.prepare()
            #expect(try await fetch(here, "k") { "unused" } == "v1")   // read from Redis, kept near
            let before = client.commandsSent
            for _ in 0..<100 { #expect(try await fetch(here, "k") { "unused" } == "v1") }
            #expect(client.commandsSent == before, "near hits cost no round trip")

            // Another process invalidates and fills: its messages drop the near entry.
            try await elsewhere.invalidate("k")
            _ = try await fetch(elsewhere, "k") { "v2" }
            #expect(await eventually { (try? await fetch(here, "k") { "unused" }) == "v2" })
            await here.shutdown()
            await otherClient.shutdown()
        }
    }

    @Test func anInvalidationInThisProcessDropsTheNearEntryAtOnce() async throws {
        try await withSharedClient { client, _ async throws in
            let namespace = uniquePrefix()
            try await fillBeforeSubscribing(client, namespace: namespace, "k", "v1")
            let cache = nearCache(client, namespace: namespace)
            try await cache.prepare()
            #expect(try await fetch(cache, "k") { "unused" } == "v1")  // read from Redis, kept near
            #expect(cache.near?.count == 1)
            try await cache.invalidate("k")
            #expect(cache.near?.count == 0)
            #expect(try await fetch(cache, "k") { "v2" } == "v2")
            await cache.shutdown()
        }
    }

    @Test func theNearCacheIsClearedWhenItsSubscriptionIsInterrupted() async throws {
        try await withPrivateServer { server in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
            try await withClient(configuration) { client async throws in
                try await fillBeforeSubscribing(client, namespace: "n", "k", "v")
                let cache = nearCache(client, namespace: "n")
                try await cache.prepare()
                #expect(try await fetch(cache, "k") { "unused" } == "v")  // read from Redis, kept near
                #expect(cache.near?.count == 1)
                // Messages may be missed while the subscriber reconnects: nothing stays near.
                try await client.send("CLIENT", "KILL", "TYPE", "pubsub")
                #expect(await eventually { cache.near?.count == 0 })
                await cache.shutdown()
            }
        }
    }

    @Test("a near entry is dropped when the invalidation arrives, while readers on every thread never suspend",
          .timeLimit(.minutes(1)))
    func theNearCacheDropsAnEntryWhileReadersSpin() async throws {
        try await withSharedClient { client, server async throws in
            let namespace = uniquePrefix()
            let otherClient = try RedisClient(configuration: RedisConfiguration(url: server.url))
            let writer = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: .init(earlyRefreshBeta: nil)))
            _ = try await fetch(writer, "k") { "v1" }
            let reader = nearCache(otherClient, namespace: namespace)
            try await reader.prepare()
            #expect(try await fetch(reader, "k") { "unused" } == "v1")
            #expect(reader.near?.count == 1)

            // As many spinning readers as the cooperative pool has threads: a task that had to
            // run to drop the entry would not get a thread until they stop. The invalidation
            // (the entry deleted, the message published) is queued on the writer's connection
            // by one of them without suspending, and written by its event loop.
            let spinners = ProcessInfo.processInfo.activeProcessorCount
            let barrier = SpinBarrier(parties: spinners)
            let deadline = ContinuousClock.now + .seconds(10)
            let sawNewValue = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<spinners {
                    group.addTask {
                        guard barrier.arriveAndSpin() else { return false }
                        if index == 0 {
                            let loop = MultiThreadedEventLoopGroup.singleton.any()
                            let connection = client.connection()
                            connection.submit(["DEL", RedisArgument(writer.keys(for: "k").entry)], to: .promise(loop.makePromise()))
                            connection.submit(["PUBLISH", RedisArgument(writer.events.channel), RedisArgument(CacheFormat.Message.invalidated(key: "k").payload)],
                                              to: .promise(loop.makePromise()))
                        }
                        while ContinuousClock.now < deadline {
                            if try await fetch(reader, "k") { "v2" } == "v2" { return true }
                        }
                        return false
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(sawNewValue.allSatisfy { $0 }, "every reader saw the invalidation before its deadline")
            await reader.shutdown()
            await otherClient.shutdown()
        }
    }

    @Test func theNearCacheNeverServesAValuePastItsFreshTime() async throws {
        try await withSharedClient { client, _ async throws in
            // An entry fresh for 300 ms, kept near. A machine too loaded to read it within
            // those 300 ms reloads it instead of keeping it: then again, on a new key.
            // The near cache's time moves when the test says.
            var kept: (cache: StampedeCache, origin: FakeOrigin, clock: ManualClock)?
            for _ in 0..<10 where kept == nil {
                let namespace = uniquePrefix()
                try await fillBeforeSubscribing(client, namespace: namespace, "k", "v1", timeToLive: .milliseconds(300))
                let clock = ManualClock()
                let cache = nearCache(client, namespace: namespace, timeToLive: .milliseconds(300), clock: clock)
                try await cache.prepare()
                let origin = FakeOrigin()
                origin.set("reloaded")
                let value = try await fetch(cache, "k") { try await origin.load() }
                if value == "v1" && cache.near?.count == 1 { kept = (cache, origin, clock) } else { await cache.shutdown() }
            }
            let (cache, origin, clock) = try #require(kept, "no entry was read from Redis within its 300 ms fresh time in ten tries")
            origin.set("v2")
            // 400 ms pass, here and on Redis's side (where the entry expires, without a message).
            try await age(client, cache.keys(for: "k").entry, by: .milliseconds(400))
            clock.advance(by: .milliseconds(400))
            // Past its 300 ms fresh time: not from the near cache (which holds it for 30 s).
            #expect(try await fetch(cache, "k") { try await origin.load() } == "v2")
            await cache.shutdown()
        }
    }
}

/// A serial executor that counts the jobs it is given.
final class CountingExecutor: SerialExecutor {
    private let queue = DispatchQueue(label: "counting-executor")
    private let count = Atomic(0)
    var jobs: Int { count.load(ordering: .relaxed) }

    func enqueue(_ job: consuming ExecutorJob) {
        count.add(1, ordering: .relaxed)
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }
}

/// An actor on a ``CountingExecutor``: how often its work came back to it.
actor CountingActor {
    nonisolated let executor = CountingExecutor()
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    func values(of key: String, from cache: StampedeCache, count: Int) async throws -> [String] {
        var values: [String] = []
        for _ in 0..<count { values.append(try await cache.value(for: key) { "v" }) }
        return values
    }
}
