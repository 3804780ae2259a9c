import Foundation
@testable import Stampede
import StampedeRedis
import StampedeTestSupport
import Testing

/// The duplicate-submission guard, in one process and across two.
@Suite("SubmissionGuard", .serialized, .timeLimit(.minutes(2)))
struct SubmissionGuardTests {
    @Test("100 concurrent duplicate submissions across two processes run the body once and all get its result")
    func onceAcrossProcesses() async throws {
        try await withSharedClient { client, server in
            let prefix = uniquePrefix()
            let workers = try (0..<2).map { _ in
                try WorkerProcess(["once-worker", "--redis", server.url, "--key-prefix", prefix, "--key", "order:7", "--tasks", "50"],
                                  executable: .testWorker)
            }
            for worker in workers { #expect(await worker.line(startingWith: "ready") != nil) }
            for worker in workers { try worker.send(line: "go") }
            for worker in workers { #expect(await worker.exitStatus(within: .seconds(60)) == 0, "\(worker.errorOutput)") }
            let results = workers.flatMap { $0.output.filter { $0.hasPrefix("result ") } }
            #expect(results.count == 100)
            #expect(Set(results).count == 1, "\(Set(results))")
            #expect(try await client.send("GET", RedisArgument(prefix + "runs")).int == 1)
        }
    }

    @Test("a second caller while the body runs is told it is in progress; a failed body frees the key; a stored result answers later callers")
    func inProgressFailureAndReplay() async throws {
        try await withSharedClient { client, _ async throws in
            let submissions = SubmissionGuard(client: client, keyPrefix: uniquePrefix(), window: .seconds(60))
            let started = OneShotFlag(), finish = OneShotFlag()
            let first = Task {
                try await submissions.once("k") {
                    started.set()
                    await finish.wait()
                    return 42
                }
            }
            await started.wait()
            let busy = await #expect(throws: StampedeError.self) { try await submissions.once("k") { 0 } }
            #expect(busy?.code == .inProgress)
            finish.set()
            #expect(try await first.value == 42)
            #expect(try await submissions.once("k") { -1 } == 42, "the stored result, without running")

            struct Declined: Error {}
            await #expect(throws: Declined.self) { try await submissions.once("failing") { () async throws -> Int in throw Declined() } }
            #expect(try await submissions.once("failing") { 7 } == 7, "the key was free again")
            let wrongType = await #expect(throws: StampedeError.self) { try await submissions.once("k", as: String.self) { "" } }
            #expect(wrongType?.code == .corruptEntry)
        }
    }

    @Test("a holder that lost its lease cannot store its result")
    func lostLeaseStoresNothing() async throws {
        try await withSharedClient { client, _ async throws in
            let prefix = uniquePrefix()
            let submissions = SubmissionGuard(client: client, keyPrefix: prefix, window: .seconds(60), leaseDuration: .milliseconds(300))
            let lease = RedisMutex(client: client, keyPrefix: prefix).keys(for: "slow").lock
            let error = await #expect(throws: StampedeError.self) {
                try await submissions.once("slow") {
                    // Someone takes the key over while the body runs.
                    try await client.send("SET", RedisArgument(lease), "someone-else", "PX", "60000")
                    try await Task.sleep(for: .milliseconds(50))
                    return "late"
                }
            }
            #expect(error?.code == .leaseLost)
            #expect(try await client.send("GET", RedisArgument(lease + ":result")).isNull)
        }
    }
}
