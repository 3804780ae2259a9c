import StampedeTestSupport
import Synchronization
import Testing
@testable import StampedeRedis

final class Arrivals: Sendable {
    private let order = Mutex<[Int]>([])
    func record(_ index: Int) { order.withLock { $0.append(index) } }
    var all: [Int] { order.withLock { $0 } }
}

@Suite("Pipelining")
struct PipeliningTests {
    @Test func repliesMatchTheirCommandsUnderOneThousandConcurrentTasks() async throws {
        for connectionCount in [1, 3] {
            let server = try await SharedServer.instance.get()
            var configuration = try RedisConfiguration(url: server.url)
            configuration.connectionCount = connectionCount
            try await withClient(configuration) { client in
                let p = uniquePrefix()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<1_000 {
                        group.addTask {
                            let key = RedisArgument("\(p)\(task)")
                            for round in 0..<5 {
                                let value = "\(task)-\(round)"
                                try await client.send("SET", key, RedisArgument(value))
                                #expect(try await client.send("GET", key).string == value)
                                #expect(try await client.send("INCR", RedisArgument("\(p)counter:\(task)")) == .integer(round + 1))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test func tasksOnTheClientsEventLoopSendAndReceive() async throws {
        try await withSharedClient { client, _ in
            let p = uniquePrefix()
            try await withTaskExecutorPreference(client.taskExecutor) {
                for index in 0..<1000 {
                    try await client.send("SET", "\(p)\(index)", RedisArgument(index))
                    #expect(client.taskExecutor.eventLoop.inEventLoop)
                }
                // Bursts past the early-write size: replies still reach their own callers.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<1000 {
                        group.addTask { () async throws in
                            #expect(try await client.send("GET", "\(p)\(index)").int == index)
                            #expect(client.taskExecutor.eventLoop.inEventLoop)
                        }
                    }
                    try await group.waitForAll()
                }
            }
        }
    }

    @Test("the client's executor starts tasks on its loop in the order they were queued, also while it runs a batch")
    func theEventLoopExecutorKeepsOrder() async throws {
        try await withSharedClient { client, _ in
            let arrivals = Arrivals()
            await withTaskExecutorPreference(client.taskExecutor) {
                await withTaskGroup(of: Void.self) { group in
                    for index in 0..<500 {
                        group.addTask {
                            #expect(client.taskExecutor.eventLoop.inEventLoop)
                            arrivals.record(index)
                        }
                    }
                }
                // More rounds, each queued while the tasks of the last may still be running.
                for round in 1...3 {
                    await withTaskGroup(of: Void.self) { group in
                        for index in 0..<100 {
                            group.addTask { arrivals.record(round * 1000 + index) }
                        }
                    }
                }
            }
            var expected = Array(0..<500)
            for round in 1...3 { expected += (0..<100).map { round * 1000 + $0 } }
            #expect(arrivals.all == expected)
        }
    }

    @Test func argumentsCompareByTheirBytes() {
        #expect(RedisArgument("abc") == RedisArgument(bytes: Array("abc".utf8)))
        #expect(RedisArgument(42) == "42")
        #expect(RedisArgument("a") != "b")
        #expect(Set<RedisArgument>(["x", RedisArgument(bytes: [120])]).count == 1)
        #expect(RedisArgument(bytes: [0, 255]).bytes == [0, 255])
    }
}

@Suite("Pipelines")
struct PipelineTests {
    @Test func returnsEveryReplyInOrderWithErrorsInTheirPlace() async throws {
        try await withSharedClient { client, _ async throws in
            let p = uniquePrefix()
            try await client.send("SET", "\(p)s", "text")
            let replies = try await client.pipeline([
                ["ECHO", "a"], ["INCR", "\(p)s"], ["GET", "\(p)s"], ["GET", "\(p)absent"],
            ])
            #expect(replies.count == 4)
            #expect(try replies[0].get() == .bulkString(Array("a".utf8)))
            // An error reply fails its own slot only, with the server's text.
            guard case .failure(let error) = replies[1] else { Issue.record("INCR on text must fail"); return }
            #expect(error.code == .serverError && error.message.contains("not an integer"))
            #expect(try replies[2].get().string == "text")
            #expect(try replies[3].get() == .null)
        }
    }

    @Test func rejectsAnEmptyPipelineOrCommand() async throws {
        try await withSharedClient { client, _ in
            #expect(await redisError { _ = try await client.pipeline([]) }?.code == .invalidArgument)
            #expect(await redisError { _ = try await client.pipeline([["PING"], []]) }?.code == .invalidArgument)
        }
    }

    @Test func aPipelineToAnUnreachableServerFailsEverySlot() async throws {
        let server = try await RedisServer.start()
        let url = server.url
        server.stop()
        try await withClient(try RedisConfiguration(url: url)) { client async throws in
            let replies = try await client.pipeline([["PING"], ["PING"]])
            #expect(replies.allSatisfy { if case .failure(let error) = $0 { error.code == .connectionRefused } else { false } })
        }
    }
}
