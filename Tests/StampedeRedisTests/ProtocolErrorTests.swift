import StampedeTestSupport
import NIOCore
import NIOPosix
import Testing
import StampedeRedis

/// A peer that is not Redis: it answers anything with bytes that are not RESP.
private final class GarbageHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: String
    init(reply: String) { self.reply = reply }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: reply)), promise: nil)
    }
}

@Suite("Protocol errors")
struct ProtocolErrorTests {
    func withGarbageServer(reply: String, _ body: (Int) async throws -> Void) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(GarbageHandler(reply: reply))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            try await body(channel.localAddress!.port!)
        } catch {
            try await channel.close()
            throw error
        }
        try await channel.close()
    }

    @Test func bytesThatAreNotRESPAreAProtocolError() async throws {
        try await withGarbageServer(reply: "HTTP/1.1 400 Bad Request\r\n\r\n") { port in
            var configuration = RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port))
            configuration.clientName = nil  // no handshake: the first command meets the garbage
            try await withClient(configuration) { client in
                let error = await redisError { try await client.send("PING") }
                #expect(error?.code == .protocolError, "\(String(describing: error))")
                #expect(error?.message.contains("Protocol error") == true)
            }
        }
    }

    @Test func aReplyNoCommandAskedForIsAProtocolError() async throws {
        // Two replies to one command: the second has no command to go to.
        try await withGarbageServer(reply: "+OK\r\n+EXTRA\r\n") { port in
            var configuration = RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port))
            configuration.clientName = nil
            try await withClient(configuration) { client async throws in
                #expect(try await client.send("PING") == .simpleString("OK"))
                // The connection was closed over the extra reply; the next command goes out on
                // a new connection and gets its own first reply.
                #expect(await eventually { (try? await client.send("PING")) == .simpleString("OK") })
            }
        }
    }
}
