import Testing
import StampedeRedis

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
}
