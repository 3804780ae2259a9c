import StampedeTestSupport
@testable import StampedeTool
import Testing

/// `stampede bench hit` end to end: the real executable against a real Redis.
@Suite("stampede bench hit", .serialized)
struct HitBenchmarkTests {
    @Test("the chosen storms only, on the event loop, in rounds, each with its CPU per call, against a user's Redis that is left empty")
    func chosenStorms() async throws {
        try await withPrivateServer { server in
            let run = try WorkerProcess([
                "bench", "hit", "--redis", server.url, "--keys", "50", "--tasks", "16", "--duration", "1",
                "--storms", "many", "hot", "--connections", "2", "--on-event-loop", "--rounds", "2",
            ])
            #expect(await run.exitStatus(within: .seconds(120)) == 0, "\(run.errorOutput)")
            #expect(run.output.contains("Round 2 of 2"), "\(run.output)")
            #expect(run.output.contains("| storm | per second (median) | against redis-benchmark | process CPU per call |"))
            let rows = run.output.filter { $0.hasPrefix("| ") && !$0.hasPrefix("| storm ") }
            #expect(rows.count == 3, "\(rows)")
            #expect(rows.first?.hasPrefix("| redis-benchmark -t get -c 16 -P 1 (16 in flight) |") == true, "\(rows)")
            #expect(rows.contains { $0.hasPrefix("| cache.value, 50 keys, 16 tasks |") && $0.hasSuffix(" us |") }, "\(rows)")
            #expect(rows.contains { $0.hasPrefix("| cache.value, one hot key, 16 tasks |") && $0.hasSuffix(" us |") }, "\(rows)")
            try await withClient(RedisConfiguration(url: server.url)) { client async throws in
                #expect(try await client.send("DBSIZE").int == 0)
            }
        }
    }

    @Test("bad flags: one line on standard error and the usage status", arguments: [
        (["--connections", "0"], "--connections must be within 1...64"),
        (["--storms", "flood"], "flood"),
        (["--rounds", "0"], "--rounds must be within 1...100"),
    ])
    func badInput(arguments: [String], message: String) async throws {
        let run = try WorkerProcess(["bench", "hit"] + arguments)
        #expect(await run.exitStatus() == 64)
        #expect(run.errorOutput.count == 1, "\(run.errorOutput)")
        #expect(run.errorOutput.first?.contains(message) == true, "\(run.errorOutput)")
    }
}

@Suite("stampede bench hit: rounds")
struct HitBenchmarkRoundsTests {
    @Test("over several rounds, each figure is the median, and each ratio is to its own round's redis-benchmark")
    func mediansOverRounds() {
        var results = RoundResults()
        // Three rounds: redis-benchmark at 1000, 2000 and 4000 GET/s; the storm at 300, 300, 1000.
        for (redis, storm, cpu) in [(1_000.0, 300.0, 3e-6), (2_000, 300, 1e-6), (4_000, 1_000, 2e-6)] {
            results.record("redis-benchmark", rate: redis, against: redis, cpu: nil)
            results.record("cache.value", rate: storm, against: redis, cpu: cpu)
        }
        let rows = results.table(rounds: 3).split(separator: "\n").map(String.init)
        #expect(rows[0] == "| storm | per second (median) | against redis-benchmark | process CPU per call |")
        #expect(rows[2] == "| redis-benchmark | 2000 | 1.00x | (other process) |")
        // Ratios 0.30, 0.15 and 0.25: the median of the ratios, not the ratio of the medians
        // (300 / 2000 = 0.15).
        #expect(rows[3] == "| cache.value | 300 | 0.25x (0.15-0.30) | 2.00 us |")
        #expect(results.rates(of: "cache.value") == [300, 300, 1_000])

        // An even number of rounds: the mean of the middle two.
        var two = RoundResults()
        two.record("cache.value", rate: 100, against: 1_000, cpu: 1e-6)
        two.record("cache.value", rate: 300, against: 1_000, cpu: 3e-6)
        #expect(two.table(rounds: 2).hasSuffix("| cache.value | 200 | 0.20x (0.10-0.30) | 2.00 us |"))
    }
}

/// `stampede bench tls` and `bench mutex --replica-acknowledgement` end to end.
@Suite("stampede bench tls and mutex", .serialized)
struct TLSAndMutexBenchmarkTests {
    @Test("bench tls: GETs and connects over TLS beside plain TCP, a row each with its ratio")
    func tls() async throws {
        let run = try WorkerProcess(["bench", "tls", "--requests", "2000", "--connects", "3", "--rounds", "1"])
        #expect(await run.exitStatus(within: .seconds(120)) == 0, "\(run.errorOutput)")
        let rows = run.output.filter { $0.hasPrefix("| ") && !$0.hasPrefix("| figure ") }
        #expect(rows.count == 3, "\(run.output)")
        for row in rows { #expect(row.hasSuffix("x |"), "\(row)") }
    }

    @Test("bench mutex --replica-acknowledgement: with and without, side by side, against a throwaway server and its replica")
    func replicaAcknowledgement() async throws {
        let run = try WorkerProcess(["bench", "mutex", "--replica-acknowledgement", "--iterations", "200", "--rounds", "1"])
        #expect(await run.exitStatus(within: .seconds(120)) == 0, "\(run.errorOutput)")
        #expect(run.output.contains { $0.hasPrefix("| off | ") }, "\(run.output)")
        #expect(run.output.contains { $0.hasPrefix("| one replica | ") }, "\(run.output)")
        #expect(run.output.contains { $0.hasPrefix("Waiting for the replica adds") }, "\(run.output)")
    }

    @Test("bench semaphore: the semaphore beside the mutex under contention, and the guard beside none")
    func semaphore() async throws {
        let run = try WorkerProcess(["bench", "semaphore", "--rounds", "1", "--duration", "0.3", "--requests", "50", "--instances", "2", "--tasks", "2"])
        #expect(await run.exitStatus(within: .seconds(120)) == 0, "\(run.errorOutput)")
        #expect(run.output.contains { $0.hasPrefix("| RedisSemaphore (1 permit) | ") }, "\(run.output)")
        #expect(run.output.contains { $0.hasPrefix("| RedisMutex | ") })
        #expect(run.output.contains { $0.hasPrefix("| SubmissionGuard.once | ") })
    }
}
