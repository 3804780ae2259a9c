/// The life of one command (or pipeline) in a cluster, without I/O: where to send it, and
/// what a redirection, a "try again" or a node that cannot be reached means for it. The
/// cluster client carries the actions out and reports each failure back.
///
/// - `MOVED`: the slot's master changed for good. The topology learns it, the command goes
///   there, and the client refreshes the whole topology in the background.
/// - `ASK`: the slot is being migrated; this one command goes to the importing node,
///   preceded by `ASKING`. The topology does not change.
/// - `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`: the command did not run; it is sent
///   again after a growing pause, while the command's deadline allows.
/// - A node that refused the connection or could not be reached in time was never sent the
///   command: the topology is asked for again and the command goes to the slot's master as
///   then known.
/// - A connection lost after the command was written, a timeout, any other error: the
///   command may have run; it is not sent again, and the error is the caller's.
struct ClusterCommandMachine {
    enum Action: Equatable {
        /// Send to `node`, preceded by `ASKING` when `asking`.
        case send(to: ClusterNodeAddress, asking: Bool)
        /// Pause this long, then send to the slot's master as then known (``resume(topology:anyNode:at:)``).
        case pause(Duration)
        /// Ask the cluster for its topology, then send (``resume(topology:anyNode:at:)``).
        case refreshTopology
        /// Give up with this error.
        case fail(RedisError)
    }

    /// The most redirections one command follows: more means the topology is changing
    /// faster than the command can follow it.
    static let maximumRedirections = 5
    /// The first pause before a command is sent again; it doubles up to ``longestPause``.
    static let firstPause: Duration = .milliseconds(10)
    static let longestPause: Duration = .milliseconds(200)

    let route: ClusterRoute
    /// Past this, nothing is sent again.
    let deadline: ContinuousClock.Instant
    private var redirections = 0
    private var pauses = 0
    private var refreshes = 0

    init(route: ClusterRoute, deadline: ContinuousClock.Instant) {
        self.route = route
        self.deadline = deadline
    }

    /// Where to send first (or again, after a pause or a refresh) at `now`: the master of
    /// the route's slot, or `anyNode` for a command without keys.
    mutating func resume(
        topology: ClusterTopology, anyNode: @autoclosure () -> ClusterNodeAddress?, at now: ContinuousClock.Instant
    ) -> Action {
        switch route {
        case .slot(let slot):
            if let master = topology.master(for: slot) { return .send(to: master, asking: false) }
        case .anyNode:
            if let anyNode = anyNode() { return .send(to: anyNode, asking: false) }
        }
        return refreshOrFail(RedisError(.connectionRefused, "no node of the cluster is known to serve \(route)"), at: now)
    }

    /// The node answered `error` (or the connection to it failed with it) at `now`.
    /// A `MOVED` is recorded in `topology`.
    mutating func failed(
        with error: RedisError, at now: ContinuousClock.Instant, topology: inout ClusterTopology
    ) -> Action {
        switch error.code {
        case .serverError:
            switch ClusterReply(errorMessage: error.message) {
            case .moved(let slot, let node):
                topology.moved(slot, to: node)
                return redirect(to: node, asking: false, error: error)
            case .ask(_, let node):
                return redirect(to: node, asking: true, error: error)
            case .retryLater:
                let pause = min(Self.firstPause * Double(1 << min(pauses, 10)), Self.longestPause)
                guard now + pause < deadline else { return .fail(error) }
                pauses += 1
                return .pause(pause)
            case .error:
                return .fail(error)
            }
        case .connectionRefused, .connectTimeout, .unknownHost:
            // Never sent: a failed-over master's address, most likely.
            return refreshOrFail(error, at: now)
        default:
            return .fail(error)
        }
    }

    private mutating func redirect(to node: ClusterNodeAddress, asking: Bool, error: RedisError) -> Action {
        redirections += 1
        guard redirections <= Self.maximumRedirections else {
            return .fail(RedisError(error.code, "redirected more than \(Self.maximumRedirections) times; last: \(error.message)"))
        }
        return .send(to: node, asking: asking)
    }

    /// Another look at the topology, while the deadline and the number of looks allow.
    private mutating func refreshOrFail(_ error: RedisError, at now: ContinuousClock.Instant) -> Action {
        refreshes += 1
        return refreshes <= Self.maximumRedirections && now < deadline ? .refreshTopology : .fail(error)
    }
}

extension ClusterRoute: CustomStringConvertible {
    public var description: String {
        switch self {
        case .slot(let slot): "slot \(slot)"
        case .anyNode: "a command without keys"
        }
    }
}
