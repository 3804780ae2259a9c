import NIOCore
import NIOPosix
#if TLS
import NIOSSL
import NIOTLS
#endif

/// TLS on a command or pub/sub connection: the context made once per connection from
/// ``RedisConfiguration/TLS``, the handler added first on every new channel, and the wait
/// for its handshake before anything else is sent. Every failure is a
/// ``RedisError/Code/tlsFailed`` that says what went wrong.
struct TLSChannelSetup: Sendable {
    private let configuration: RedisConfiguration.TLS
    #if TLS
    /// The context, or why it could not be made (a file missing or unreadable).
    private let context: Result<NIOSSLContext, RedisError>
    #endif

    init(_ configuration: RedisConfiguration.TLS) {
        self.configuration = configuration
        #if TLS
        context = Result { () throws(RedisError) in try Self.makeContext(configuration) }
        #endif
    }

    #if TLS
    private static func makeContext(_ tls: RedisConfiguration.TLS) throws(RedisError) -> NIOSSLContext {
        var settings = TLSConfiguration.makeClientConfiguration()
        switch tls.trust {
        case .system: settings.trustRoots = .default
        case .certificateAuthorityFile(let path): settings.trustRoots = .file(path)
        }
        settings.certificateVerification = tls.verifiesHostname ? .fullVerification : .noHostnameVerification
        do {
            if let certificateFile = tls.certificateFile, let privateKeyFile = tls.privateKeyFile {
                settings.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { .certificate($0) }
                settings.privateKey = .privateKey(try NIOSSLPrivateKey(file: privateKeyFile, format: .pem))
            }
            return try NIOSSLContext(configuration: settings)
        } catch {
            throw RedisError(.tlsFailed, "could not load the TLS files (CA \(tls.trust), certificate \(tls.certificateFile ?? "none"), key \(tls.privateKeyFile ?? "none")): \(error)")
        }
    }
    #endif

    /// Adds the TLS handler (and the watcher of its handshake) at the front of `channel`'s
    /// pipeline, for a connection to `host`.
    func addHandlers(to channel: any Channel, host: String) throws {
        #if TLS
        let context = try self.context.get()
        // SNI carries a name, never an address: for an IP address, the certificate is
        // checked against the address connected to.
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let serverName = configuration.serverName ?? (isAddress ? nil : host)
        do {
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
        } catch {
            throw RedisError(.tlsFailed, "could not set up TLS for \(host): \(error)")
        }
        try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(promise: channel.eventLoop.makePromise()))
        #else
        throw RedisError(.tlsFailed, "this build of StampedeRedis has no TLS: enable the package's TLS trait (.package(url: ..., traits: [\"TLS\"]), or swift build --traits TLS)")
        #endif
    }

    /// Succeeds once `channel`'s TLS handshake completed; fails with
    /// ``RedisError/Code/tlsFailed`` (or ``RedisError/Code/connectTimeout`` after `timeout`).
    func handshakeCompleted(on channel: any Channel, within timeout: TimeAmount, endpoint: RedisConfiguration.Endpoint) -> EventLoopFuture<Void> {
        #if TLS
        guard let watcher = try? channel.pipeline.syncOperations.handler(type: TLSHandshakeWatcher.self) else {
            return channel.eventLoop.makeFailedFuture(RedisError(.tlsFailed, "no TLS handler on the connection to \(endpoint)"))
        }
        let promise = watcher.promise
        let deadline = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(RedisError(.connectTimeout, "the TLS handshake with \(endpoint) did not complete within the connect timeout"))
        }
        return promise.futureResult.always { _ in deadline.cancel() }.flatMapErrorThrowing { error in
            if let error = error as? RedisError { throw error }
            throw RedisError(.tlsFailed, "TLS handshake with \(endpoint) failed: \(error)")
        }
        #else
        return channel.eventLoop.makeFailedFuture(RedisError(.tlsFailed, "this build of StampedeRedis has no TLS"))
        #endif
    }
}

#if TLS

/// Completes its promise when the TLS handshake ends: at `handshakeCompleted`, or at the
/// first error or the connection's close before it. Everything passes on unchanged.
private final class TLSHandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<Void>
    private var isDone = false

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    private func finish(_ result: Result<Void, any Error>) {
        guard !isDone else { return }
        isDone = true
        promise.completeWith(result)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event { finish(.success(())) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(RedisError(.tlsFailed, "the server closed the connection during the TLS handshake (does it speak TLS on this port, and does it want a client certificate?)")))
        context.fireChannelInactive()
    }
}
#endif
