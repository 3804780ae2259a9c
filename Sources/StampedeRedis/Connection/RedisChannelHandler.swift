import NIOCore

/// Parses replies on one channel and hands each to the oldest command still waiting.
///
/// Redis answers the commands on a connection in the order it received them, so the
/// handler keeps the in-flight commands in a queue. It lives on its channel's event loop;
/// every stored field is read and written there only.
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Commands sent and not yet answered, oldest first.
    private var inFlight = CircularBuffer<PendingCommand>(initialCapacity: 64)
    private let parser = RESPParser()
    /// One timer for the whole queue, armed for the oldest deadline: no timer per command.
    private var timeoutTimer: (timer: Scheduled<Void>, deadline: NIODeadline)?
    /// When bytes last arrived; a connection that stays silent while commands wait is dead.
    private var lastRead = NIODeadline.now()
    private var isClosed = false
    /// The reason to report to in-flight commands when the channel closes.
    private var closeReason: RedisError?
    private weak var context: ChannelHandlerContext?

    private let commandTimeout: TimeAmount
    /// Receives pub/sub messages (`message` pushes) on a subscriber connection; `nil` on a
    /// command connection, where every reply answers a command.
    private let pushHandler: (@Sendable (RedisValue) -> Void)?

    init(commandTimeout: TimeAmount, pushHandler: (@Sendable (RedisValue) -> Void)?) {
        self.commandTimeout = commandTimeout
        self.pushHandler = pushHandler
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Queues commands whose bytes are being written now, in the order they are written.
    func enqueue(_ commands: some Sequence<PendingCommand>) {
        if isClosed {
            let error = closeReason ?? RedisError(.connectionLost, "the connection closed before the command was sent")
            for command in commands { command.target?.fail(error) }
            return
        }
        inFlight.append(contentsOf: commands)
        armTimer()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        do {
            try parser.feed(unwrapInboundIn(data))
            while let value = try parser.next() {
                deliver(value, context: context)
            }
        } catch {
            close(context: context, reason: error)
        }
    }

    private func deliver(_ value: RedisValue, context: ChannelHandlerContext) {
        if let pushHandler, Self.isPush(value) {
            pushHandler(value)
            return
        }
        guard let command = inFlight.popFirst() else {
            close(context: context, reason: RedisError(.protocolError, "the server sent a reply that no command asked for"))
            return
        }
        command.target?.complete(with: value)
    }

    /// A pub/sub message, as opposed to the reply to SUBSCRIBE, UNSUBSCRIBE or PING.
    private static func isPush(_ value: RedisValue) -> Bool {
        guard case .array(let elements) = value, let kind = elements.first?.bytes else { return false }
        return kind.elementsEqual("message".utf8) || kind.elementsEqual("pmessage".utf8)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        timeoutTimer?.timer.cancel()
        timeoutTimer = nil
        let error = closeReason ?? RedisError(.connectionLost, "the connection to Redis closed with the command in flight")
        while let command = inFlight.popFirst() {
            command.target?.fail(error)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(context: context, reason: RedisError(.connectionLost, "connection error: \(error)"))
    }

    private func close(context: ChannelHandlerContext, reason: RedisError) {
        if closeReason == nil { closeReason = reason }
        context.close(promise: nil)
    }

    // MARK: Timeouts

    /// Arms the one timer for the earliest of: the oldest live command's deadline, and the
    /// moment the connection will have been silent too long.
    private func armTimer() {
        guard let context, let oldest = inFlight.first else { return }
        var deadline = silenceLimit(oldest: oldest)
        if let live = inFlight.first(where: { $0.target != nil }) { deadline = min(deadline, live.deadline) }
        if let timer = timeoutTimer {
            // Armed for a later command (say a handshake with the longer connect timeout)?
            // Re-arm for the earlier deadline.
            guard deadline < timer.deadline else { return }
            timer.timer.cancel()
        }
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.timeoutTimer = nil
            self.expireCommands()
        }
        timeoutTimer = (task, deadline)
    }

    /// When a connection with `oldest` waiting is declared dead: two command timeouts after
    /// the later of the last bytes read and the moment `oldest` was sent.
    private func silenceLimit(oldest: PendingCommand) -> NIODeadline {
        max(lastRead, oldest.deadline - commandTimeout) + .nanoseconds(commandTimeout.nanoseconds * 2)
    }

    /// Fails every waiting command past its deadline, and closes a connection that stayed
    /// silent for two command timeouts while commands waited (a paused or vanished server
    /// whose socket never closed); the reconnect logic takes over from there.
    private func expireCommands() {
        let now = NIODeadline.now()
        for index in inFlight.indices {
            if inFlight[index].deadline > now { break }  // deadlines grow along the queue
            if let target = inFlight[index].target {
                inFlight[index].target = nil
                target.fail(RedisError(.timeout, "no reply within \(commandTimeout.nanoseconds / 1_000_000) ms"))
            }
        }
        if let oldest = inFlight.first, let context, now >= silenceLimit(oldest: oldest) {
            close(context: context, reason: RedisError(
                .connectionLost, "the server sent nothing for two command timeouts; the connection was closed"))
            return
        }
        armTimer()
    }
}
