import Foundation
@testable import Stampede
import StampedeTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The lock across real processes: workers are the `stampede` executable in worker mode.
@Suite("RedisMutex across processes", .serialized)
struct MutexProcessTests {
    @Test func noUpdateIsLostAcrossFourProcesses() async throws {
        try await withSharedClient { client, server in
            let prefix = uniquePrefix()
            let counter = prefix + "counter"
            let workers = try (0..<4).map { _ in
                try WorkerProcess([
                    "mutex-worker", "--redis", server.url, "--name", "shared", "--mode", "count",
                    "--key-prefix", prefix, "--counter", counter, "--tasks", "8", "--iterations", "40",
                ], executable: .testWorker)
            }
            for worker in workers {
                #expect(await worker.exitStatus(within: .seconds(120)) == 0)
                #expect(worker.output.contains("done"))
            }
            // 4 processes x 8 tasks x 40 non-atomic increments, each under the lock.
            #expect(try await client.send("GET", RedisArgument(counter)).int == 1_280)
        }
    }

    @Test func aKilledHoldersLockFreesWhenItsLeaseRunsOut() async throws {
        try await withSharedClient { client, server in
            let prefix = uniquePrefix()
            let holder = try WorkerProcess([
                "mutex-worker", "--redis", server.url, "--name", "crash", "--mode", "hold",
                "--key-prefix", prefix, "--lease-ms", "1000", "--hold-ms", "60000",
            ], executable: .testWorker)
            let held = try #require(await holder.line(startingWith: "acquired ").flatMap { Int($0.dropFirst("acquired ".count)) })
            holder.signal(SIGKILL)
            let mutex = RedisMutex(client: client, keyPrefix: prefix)
            // The killed holder's 1 s lease runs out long before this waits 30 s and gives up.
            let fence = try await mutex.withLock("crash", options: .init(maximumWait: .seconds(30))) { $0.fence }
            #expect(fence.value > held, "the next holder's fence is newer than the killed one's")
        }
    }

    @Test func aPausedHolderLearnsItLostTheLeaseAndItsLateWriteIsRejected() async throws {
        try await withSharedClient { client, server in
            let prefix = uniquePrefix()
            let store = prefix + "document"
            let holder = try WorkerProcess([
                "mutex-worker", "--redis", server.url, "--name", "paused", "--mode", "hold",
                "--key-prefix", prefix, "--lease-ms", "600", "--hold-ms", "300",
                "--write-key", store, "--value", "stale",
            ], executable: .testWorker)
            let acquired = try #require(await holder.line(startingWith: "acquired"))
            holder.signal(SIGSTOP)
            // Paused past its lease: the lock expires and this process takes it over.
            let mutex = RedisMutex(client: client, keyPrefix: prefix)
            let newFence = try await mutex.withLock("paused", options: .init(maximumWait: .seconds(10))) { lease async throws in
                #expect(try await mutex.setIfFenceIsNewest(Array("fresh".utf8), at: store, fence: lease.fence))
                return lease.fence
            }
            #expect(newFence.value > Int(acquired.split(separator: " ")[1])!)
            holder.signal(SIGCONT)
            // The resumed holder writes with its old token (rejected), learns the lease is
            // lost, runs its handler and fails instead of pretending it succeeded.
            #expect(await holder.exitStatus(within: .seconds(20)) == 3)
            #expect(holder.output.contains("write rejected"))
            #expect(holder.output.contains("handler tokenGone"))
            #expect(holder.output.contains("lost"))
            #expect(!holder.output.contains("released"))
            #expect(try await client.send("GET", RedisArgument(store)).string == "fresh")
        }
    }
}

@Suite("RedisMutex when Redis fails", .serialized)
struct MutexRedisFailureTests {
    func configuration(_ server: RedisServer) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: server.url)
        configuration.commandTimeout = .milliseconds(200)
        configuration.connectTimeout = .milliseconds(200)
        configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
        return configuration
    }

    @Test func aRestartWhileHeldIsALostLease() async throws {
        try await withPrivateServer { server in
            try await withClient(try configuration(server)) { client in
                let mutex = RedisMutex(client: client)
                let handled = Tally()
                let options = LockOptions(leaseDuration: .milliseconds(600), onLeaseLost: { _ in handled.add() })
                let error = await stampedeError {
                    try await mutex.withLock("restart", options: options) { _ in
                        try await server.restart()
                        try await Task.sleep(for: .seconds(10))
                    }
                }
                // The restarted server has no lock: the next renewal finds the token gone.
                #expect(error?.code == .leaseLost)
                #expect(handled.count == 1)
            }
        }
    }

    @Test func redisGoneUntilTheLeaseRunsOutIsALostLeaseAndNothingHangs() async throws {
        try await withPrivateServer { server in
            try await withClient(try configuration(server)) { client in
                let mutex = RedisMutex(client: client)
                let options = LockOptions(leaseDuration: .milliseconds(600))
                let clock = ContinuousClock()
                let start = clock.now
                let error = await stampedeError {
                    try await mutex.withLock("gone", options: options) { _ in
                        server.kill()
                        try await Task.sleep(for: .seconds(10))
                    }
                }
                #expect(error?.code == .leaseLost)
                // Lost by the local clock when the lease ran out, not after the body's 10 s.
                #expect(clock.now - start < .seconds(5))
                // Acquiring while Redis is down fails at once with a typed error.
                let down = await stampedeError { try await mutex.withLock("other") { _ in } }
                #expect(down?.code == .redisUnavailable)
            }
        }
    }
}
