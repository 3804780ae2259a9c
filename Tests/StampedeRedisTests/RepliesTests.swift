import StampedeTestSupport
import Testing
import StampedeRedis

@Suite("Replies and binary safety")
struct RepliesTests {
    @Test func decodesEveryReplyType() async throws {
        try await withSharedClient { client, _ in
            let p = uniquePrefix()
            #expect(try await client.send("PING") == .simpleString("PONG"))
            #expect(try await client.send("SET", "\(p)k", "v") == .simpleString("OK"))
            #expect(try await client.send("GET", "\(p)k") == .bulkString(Array("v".utf8)))
            #expect(try await client.send("SET", "\(p)empty", "") == .simpleString("OK"))
            #expect(try await client.send("GET", "\(p)empty") == .bulkString([]))
            #expect(try await client.send("INCRBY", "\(p)n", "-5") == .integer(-5))
            #expect(try await client.send("GET", "\(p)absent") == .null)
            #expect(try await client.send("RPUSH", "\(p)list", "a", "b") == .integer(2))
            #expect(try await client.send("LRANGE", "\(p)list", "0", "-1")
                == .array([.bulkString(Array("a".utf8)), .bulkString(Array("b".utf8))]))
            #expect(try await client.send("LRANGE", "\(p)nolist", "0", "-1") == .array([]))
            // A null array: BLPOP that times out.
            #expect(try await client.send("BLPOP", "\(p)nolist", "0.01") == .null)
            // Nested arrays with mixed element types.
            let nested = try await client.send("EVAL", "return {1, 'two', {3, false}}", "0")
            #expect(nested == .array([.integer(1), .bulkString(Array("two".utf8)), .array([.integer(3), .null])]))
            // An error nested in an array stays a value; a top-level error is thrown.
            _ = try await client.send("MULTI")
            _ = try await client.send("SET", "\(p)str", "x")
            _ = try await client.send("LPUSH", "\(p)str", "y")
            let exec = try await client.send("EXEC")
            guard case .array(let results) = exec, results.count == 2, case .error(let text) = results[1] else {
                Issue.record("EXEC gave \(exec)")
                return
            }
            #expect(text.hasPrefix("WRONGTYPE"))
            let error = await redisError { try await client.send("LPUSH", "\(p)str", "y") }
            #expect(error?.code == .serverError)
            #expect(error?.serverErrorPrefix == "WRONGTYPE")
            #expect(error?.message.contains("wrong kind of value") == true)
        }
    }

    @Test func keysAndValuesAreBinarySafe() async throws {
        try await withSharedClient { client, _ in
            let p = uniquePrefix()
            let key = RedisArgument(bytes: Array(p.utf8) + [0, 13, 10, 0xFF, 0x24, 0x2A])
            let value: [UInt8] = [0, 1, 2, 13, 10, 0, 0xFE, 0xFF] + Array("$5\r\n*1\r\n".utf8)
            try await client.send("SET", key, RedisArgument(bytes: value))
            #expect(try await client.send("GET", key).bytes == value)
            #expect(try await client.send("STRLEN", key) == .integer(value.count))
        }
    }

    @Test func oneMebibyteValuesRoundTrip() async throws {
        try await withSharedClient { client, _ in
            let p = uniquePrefix()
            var generator = SystemRandomNumberGenerator()
            let value = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try await client.send("SET", RedisArgument("\(p)big"), RedisArgument(bytes: value))
            // Several in flight at once, interleaved with small commands.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    group.addTask { () async throws in
                        if index.isMultiple(of: 2) {
                            #expect(try await client.send("GET", RedisArgument("\(p)big")).bytes == value)
                        } else {
                            #expect(try await client.send("PING") == .simpleString("PONG"))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func rejectsAnEmptyCommand() async throws {
        try await withSharedClient { client, _ in
            let error = await redisError { try await client.send([]) }
            #expect(error?.code == .invalidArgument)
        }
    }
}
