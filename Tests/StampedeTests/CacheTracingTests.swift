import InMemoryTracing
@_spi(Benchmarks) @testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Testing
import Tracing

/// Spans of a traced cache, recorded by an in-memory tracer.
@Suite("StampedeCache spans", .timeLimit(.minutes(2)))
struct CacheTracingTests {
    func text(_ span: FinishedInMemorySpan, _ name: String) -> String? {
        if case .string(let value)? = span.attributes[name]?.toSpanAttribute() { return value }
        return nil
    }

    func lookups(_ tracer: InMemoryTracer) -> [FinishedInMemorySpan] {
        tracer.finishedSpans.filter { $0.operationName == "stampede.cache.lookup" }
    }

    @Test("a span per lookup, with its outcome and namespace: leader (with the origin call's span under it), hit, near hit, joined")
    func outcomesInOneProcess() async throws {
        try await withSharedClient { client, _ in
            let tracer = InMemoryTracer()
            let namespace = uniquePrefix()
            let cache = StampedeCache(client: client, configuration: .init(
                namespace: namespace, policy: .init(earlyRefreshBeta: nil), nearCache: .init(), tracing: .init(tracer: tracer)))
            // The near cache keeps values only while its subscription is up.
            try await cache.prepare()
            let origin = FakeOrigin()
            // Two callers: one leads, the other joins it.
            async let first = fetch(cache, "k") { try await origin.loadWhenReleased() }
            await origin.waitForCalls(1)
            async let second = fetch(cache, "k") { "not called" }
            #expect(await eventually { cache.waiting(for: "k") >= 2 })
            origin.release()
            _ = try await (first, second)
            // A hit from Redis keeps the value near, unless the fill's own message is still on
            // its way (it would drop it): read until a near hit comes.
            #expect(await eventually {
                _ = try? await fetch(cache, "k") { "not called" }
                return lookups(tracer).contains { text($0, "stampede.outcome") == "near_hit" }
            })
            let outcomes = lookups(tracer).compactMap { text($0, "stampede.outcome") }
            #expect(Array(outcomes.prefix(2)).sorted() == ["joined", "leader"], "\(outcomes)")
            #expect(Set(outcomes.dropFirst(2)) == ["hit", "near_hit"], "\(outcomes)")
            #expect(lookups(tracer).allSatisfy { text($0, "stampede.namespace") == namespace })
            #expect(lookups(tracer).allSatisfy { text($0, "stampede.key") == nil }, "no key unless asked for")
            let leaderSpan = try #require(lookups(tracer).first { text($0, "stampede.outcome") == "leader" })
            let load = try #require(tracer.finishedSpans.first { $0.operationName == "stampede.cache.load" })
            #expect(load.parentSpanID == leaderSpan.spanID, "the origin call's span is under the lookup's")

            // With the key, when asked for: a second cache without the near cache.
            let plain = StampedeCache(client: client, configuration: .init(
                namespace: namespace, policy: .init(earlyRefreshBeta: nil), tracing: .init(tracer: tracer, recordsKeys: true)))
            tracer.clearFinishedSpans()
            _ = try await fetch(plain, "k") { "not called" }
            #expect(lookups(tracer).map { text($0, "stampede.outcome") } == ["hit"])
            #expect(lookups(tracer).first.flatMap { text($0, "stampede.key") } == "k", "the key, when asked for")
            await cache.shutdown()
            await plain.shutdown()
        }
    }

    @Test("follower (woken by another's fill), stale served, and a load without Redis")
    func otherOutcomes() async throws {
        try await withSharedClient { client, server in
            let tracer = InMemoryTracer()
            let namespace = uniquePrefix()
            let leader = StampedeCache(client: client, configuration: .init(namespace: namespace, policy: .init(earlyRefreshBeta: nil)))
            try await withClient(RedisConfiguration(url: server.url)) { otherClient in
                let follower = StampedeCache(client: otherClient, configuration: .init(
                    namespace: namespace, policy: .init(earlyRefreshBeta: nil), tracing: .init(tracer: tracer)))
                try await follower.prepare()
                let origin = FakeOrigin()
                let leading = Task { try await fetch(leader, "k") { try await origin.loadWhenReleased() } }
                await origin.waitForCalls(1)
                let following = Task { try await fetch(follower, "k") { "not called" } }
                #expect(await eventually { follower.waiting(for: "k") >= 1 })
                origin.release()
                _ = try await (leading.value, following.value)
                #expect(lookups(tracer).map { text($0, "stampede.outcome") } == ["follower"])

                // Stale: a value past its time to live, within stale-while-revalidate.
                tracer.clearFinishedSpans()
                let stalePolicy = CachePolicy(timeToLive: .milliseconds(1), staleWhileRevalidate: .seconds(60), earlyRefreshBeta: nil)
                try await follower.set("old", for: "s", policy: stalePolicy)
                try await Task.sleep(for: .milliseconds(20))
                _ = try await follower.value(for: "s", as: String.self, policy: stalePolicy) { "new" }
                #expect(lookups(tracer).map { text($0, "stampede.outcome") } == ["stale_served"])
                await follower.shutdown()
            }
            await leader.shutdown()
        }
        var unreachable = try RedisConfiguration(url: "redis://127.0.0.1:1")
        unreachable.connectTimeout = .milliseconds(200)
        try await withClient(unreachable) { client async throws in
            let tracer = InMemoryTracer()
            let cache = StampedeCache(client: client, configuration: .init(namespace: uniquePrefix(), tracing: .init(tracer: tracer)))
            _ = try await fetch(cache, "k") { "from the origin" }
            #expect(lookups(tracer).map { text($0, "stampede.outcome") } == ["without_redis"])
        }
    }

    @Test("a lock's acquisition and hold are two spans with its name and fence; a refused one records the error")
    func lockSpans() async throws {
        try await withSharedClient { client, _ in
            let tracer = InMemoryTracer()
            let mutex = RedisMutex(client: client, keyPrefix: uniquePrefix(), tracer: tracer)
            let fence = try await mutex.withLock("ledger") { $0.fence }
            let acquire = try #require(tracer.finishedSpans.first { $0.operationName == "stampede.lock.acquire" })
            let hold = try #require(tracer.finishedSpans.first { $0.operationName == "stampede.lock.hold" })
            #expect(text(acquire, "stampede.lock") == "ledger" && text(hold, "stampede.lock") == "ledger")
            if case .int64(let value)? = hold.attributes["stampede.fence"]?.toSpanAttribute() { #expect(Int(value) == fence.value) } else { Issue.record("no fence") }
            #expect(hold.parentSpanID != acquire.spanID, "the hold is not inside the acquisition")
            #expect(tracer.finishedSpans.filter { $0.operationName == "stampede.lock.acquire" }.count == 1, "ended once")

            tracer.clearFinishedSpans()
            await #expect(throws: StampedeError.self) { try await mutex.withLock("", options: .init()) { _ in } }
            try await mutex.withLock("ledger") { _ in
                let refused = await #expect(throws: StampedeError.self) {
                    try await Task.detached { try await mutex.withLock("ledger", options: .init(maximumWait: .milliseconds(50))) { _ in } }.value
                }
                #expect(refused?.code == .waitTimedOut)
            }
            let failed = tracer.finishedSpans.filter { $0.operationName == "stampede.lock.acquire" && !$0.errors.isEmpty }
            #expect(failed.count == 1, "\(tracer.finishedSpans.map(\.operationName))")
        }
    }
}
