import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy between a client and a server for fault tests: it forwards, drops the
/// server's replies (the commands still run: a reply lost on the way back), drops
/// everything (a black hole), or cuts every connection.
public final class TestProxy: Sendable {
    public enum Mode: Sendable {
        case forward
        /// Client bytes reach the server; the server's replies are thrown away.
        case dropReplies
        /// Nothing gets through in either direction; connections stay open.
        case dropAll
    }

    final class Shared: Sendable {
        let mode = Mutex(Mode.forward)
        let connections = Mutex<[any Channel]>([])
    }

    private let shared: Shared
    private let listener: any Channel
    /// The port the proxy listens on, at 127.0.0.1.
    public let port: Int

    /// Starts a proxy on a free loopback port that forwards to `host:port`.
    public static func start(to host: String, port targetPort: Int) async throws -> TestProxy {
        let shared = Shared()
        let group = MultiThreadedEventLoopGroup.singleton
        let listener = try await ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                // Connect to the server, then relay both ways.
                ClientBootstrap(group: inbound.eventLoop)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            try outbound.pipeline.syncOperations.addHandler(Relay(partner: inbound, shared: shared, isReply: true))
                        }
                    }
                    .connect(host: host, port: targetPort)
                    .flatMap { outbound in
                        shared.connections.withLock { $0 += [inbound, outbound] }
                        return inbound.eventLoop.makeCompletedFuture {
                            try inbound.pipeline.syncOperations.addHandler(Relay(partner: outbound, shared: shared, isReply: false))
                        }.flatMap {
                            // Read from the client only now that the server side is connected.
                            inbound.setOption(.autoRead, value: true)
                        }
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return TestProxy(listener: listener, shared: shared)
    }

    private init(listener: any Channel, shared: Shared) {
        self.listener = listener
        self.port = listener.localAddress!.port!
        self.shared = shared
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    public func set(_ mode: Mode) { shared.mode.withLock { $0 = mode } }

    /// Closes every connection through the proxy (new ones are still accepted).
    public func cutAll() {
        let connections = shared.connections.withLock { connections in
            defer { connections = [] }
            return connections
        }
        for connection in connections { connection.close(promise: nil) }
    }

    public func stop() async {
        cutAll()
        try? await listener.close()
    }
}

/// Copies what one side reads to the other side, as the proxy's mode allows.
private final class Relay: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let partner: any Channel
    let shared: TestProxy.Shared
    /// Whether this side reads the server's bytes.
    let isReply: Bool

    init(partner: any Channel, shared: TestProxy.Shared, isReply: Bool) {
        self.partner = partner
        self.shared = shared
        self.isReply = isReply
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let mode = shared.mode.withLock { $0 }
        switch mode {
        case .forward: partner.writeAndFlush(unwrapInboundIn(data), promise: nil)
        case .dropReplies where !isReply: partner.writeAndFlush(unwrapInboundIn(data), promise: nil)
        case .dropReplies, .dropAll: break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
