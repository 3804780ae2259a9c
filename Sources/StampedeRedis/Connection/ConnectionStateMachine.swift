import NIOCore

/// The life of one reconnecting connection, apart from I/O.
///
/// `Link` is whatever stands for an open connection (a channel and its handler in
/// ``RedisConnection``; a plain value in the unit tests). Every method is called under
/// the owner's lock and returns what the owner must do once it has let go of the lock.
///
/// ```
/// idle --submit--> connecting --connected--> connected --closed--> connecting
///                    |    ^                                            |
///                 failed  +--- retry due --- waitingToReconnect <------+ (failed)
/// any --close--> closed
/// ```
struct ConnectionStateMachine<Link> {
    enum Phase {
        /// Never used: the first command opens the connection.
        case idle
        /// A connect and its handshake are under way; commands queue and go out once it is done.
        case connecting
        case connected(Link)
        /// The last attempt failed; commands fail at once with its error until the retry.
        case waitingToReconnect(RedisError)
        case closed
    }

    private(set) var phase: Phase = .idle
    /// Commands accepted but not yet handed to a channel, and their encoded bytes.
    private var pendingBytes: ByteBuffer
    private var pendingCommands: [PendingCommand] = []
    /// Whether a flush of the pending commands is already scheduled on the event loop.
    private var flushScheduled = false
    /// Failed attempts in a row, for the backoff; reset by a successful connect.
    private(set) var failedAttempts = 0
    /// Successful connects so far: more than one means subscriptions must be restored.
    private(set) var connectCount = 0
    /// Commands accepted for sending so far (handshakes not included).
    private(set) var commandsAccepted = 0

    /// How many commands make a burst worth writing before its scheduled flush.
    static var earlyFlushCount: Int { 64 }

    init(allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        pendingBytes = allocator.buffer(capacity: 0)
    }

    enum SubmitAction {
        case none
        /// Start connecting (the phase is now `connecting`).
        case connect
        /// Schedule one flush on the event loop; later commands ride along with it.
        case scheduleFlush(Link)
        /// A flush is scheduled but the burst is already large: a caller running on the
        /// event loop itself should write it now, so that Redis works on these commands
        /// while the loop goes on with the rest of the burst (the scheduled flush would run
        /// only after every task already queued on the loop).
        case flushIfOnEventLoop(Link)
        case fail(RedisError)
    }

    /// Queues one command, encoded into the pending bytes.
    mutating func submit(_ arguments: [RedisArgument], target: ReplyTarget, deadline: NIODeadline) -> SubmitAction {
        let link: Link?
        switch phase {
        case .closed:
            return .fail(RedisError(.clientClosed, "the Redis client was shut down"))
        case .waitingToReconnect(let error):
            return .fail(RedisError(error.code, "Redis is unreachable, retrying in the background: \(error.message)"))
        case .idle, .connecting:
            link = nil
        case .connected(let connected):
            link = connected
        }
        RESPEncoder.encode(arguments, into: &pendingBytes)
        commandsAccepted += 1
        pendingCommands.append(PendingCommand(target: target, deadline: deadline))
        guard let link else {
            guard case .idle = phase else { return .none }
            phase = .connecting
            return .connect
        }
        if flushScheduled {
            return pendingCommands.count >= Self.earlyFlushCount ? .flushIfOnEventLoop(link) : .none
        }
        flushScheduled = true
        return .scheduleFlush(link)
    }

    /// The commands to write now, or `nil` when there are none or the connection is not up
    /// (they stay queued for the next connection).
    mutating func takePending() -> (bytes: ByteBuffer, commands: [PendingCommand])? {
        flushScheduled = false
        guard case .connected = phase, !pendingCommands.isEmpty else { return nil }
        return takeAll()
    }

    private mutating func takeAll() -> (bytes: ByteBuffer, commands: [PendingCommand]) {
        let taken = (pendingBytes, pendingCommands)
        // The next burst is likely as large as this one: size the new buffers for it.
        pendingBytes = ByteBufferAllocator().buffer(capacity: min(taken.0.readableBytes, 1 << 16))
        pendingCommands = []
        pendingCommands.reserveCapacity(taken.1.count)
        return taken
    }

    enum ConnectedAction {
        /// Write these queued commands; `isReconnect` tells whether this is not the first connection.
        case flush(bytes: ByteBuffer, commands: [PendingCommand], isReconnect: Bool)
        /// The client was shut down meanwhile: close the new link.
        case closeLink
    }

    mutating func connected(_ link: Link) -> ConnectedAction {
        guard case .connecting = phase else { return .closeLink }
        phase = .connected(link)
        failedAttempts = 0
        connectCount += 1
        flushScheduled = false
        let (bytes, commands) = takeAll()
        return .flush(bytes: bytes, commands: commands, isReconnect: connectCount > 1)
    }

    /// A connect or handshake failed: the queued commands fail with `error`, and a retry is
    /// due after the backoff for attempt `retryAttempt`. `nil` when the client was shut down.
    mutating func connectFailed(_ error: RedisError) -> (failed: [PendingCommand], retryAttempt: Int)? {
        guard case .connecting = phase else { return nil }
        phase = .waitingToReconnect(error)
        let attempt = failedAttempts
        failedAttempts += 1
        return (takeAll().commands, attempt)
    }

    /// The open link closed. Returns whether to reconnect now; commands not yet written stay
    /// queued and go out on the next connection.
    mutating func linkClosed(isCurrent: (Link) -> Bool) -> Bool {
        guard case .connected(let link) = phase, isCurrent(link) else { return false }
        phase = .connecting
        return true
    }

    /// The backoff delay ran out. Returns whether to connect now.
    mutating func retryDue() -> Bool {
        guard case .waitingToReconnect = phase else { return false }
        phase = .connecting
        return true
    }

    /// Shuts down: returns the open link, if any, and the commands that never went out.
    mutating func close() -> (link: Link?, unsent: [PendingCommand]) {
        var link: Link?
        if case .connected(let open) = phase { link = open }
        phase = .closed
        return (link, takeAll().commands)
    }
}
