import StampedeTestSupport
import Testing
@testable import StampedeRedis

@Suite("Scripts")
struct ScriptTests {
    @Test func sha1MatchesKnownDigests() {
        #expect(SHA1.hexDigest([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(SHA1.hexDigest(Array("abc".utf8)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(SHA1.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(SHA1.hexDigest(Array(repeating: UInt8(ascii: "a"), count: 1_000_000))
            == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func scriptShaMatchesTheServers() async throws {
        try await withSharedClient { client, _ async throws in
            let script = RedisScript("return ARGV[1] .. KEYS[1]")
            #expect(try await client.send("SCRIPT", "LOAD", RedisArgument(script.source)).string == script.sha1)
        }
    }

    @Test func fallsBackToEvalAfterScriptFlush() async throws {
        try await withPrivateServer { server in
            let configuration = try RedisConfiguration(url: server.url)
            try await withClient(configuration) { client in
                let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
                // First use: the server does not know it yet.
                #expect(try await client.run(script, keys: ["n"], arguments: ["2"]) == .integer(2))
                #expect(try await client.send("SCRIPT", "EXISTS", RedisArgument(script.sha1)) == .array([.integer(1)]))
                #expect(try await client.run(script, keys: ["n"], arguments: ["3"]) == .integer(5))
                try await client.send("SCRIPT", "FLUSH")
                #expect(try await client.run(script, keys: ["n"], arguments: ["4"]) == .integer(9))
                // A Lua error keeps the server's text.
                let error = await redisError { try await client.run(RedisScript("return redis.call('NOPE')")) }
                #expect(error?.code == .serverError)
                #expect(error?.message.contains("Unknown Redis command") == true || error?.message.contains("unknown command") == true)
            }
        }
    }
}
