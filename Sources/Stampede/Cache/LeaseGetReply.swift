import StampedeRedis

/// What the lease-get script decided.
struct LeaseGetReply: Sendable {
    enum State: String, Sendable { case fresh, stale, miss }
    enum Role: String, Sendable { case none, leader, follower }

    var state: State
    /// Redis's clock when it decided, ms since the epoch.
    var now: Int
    var role: Role
    /// The new fence when this caller became the leader.
    var fence: Int
    /// How long the current leader's lease still runs, ms (for followers).
    var lockTTL: Int
    /// Whether a foreign or unreadable value was found (and deleted).
    var wasCorrupt: Bool
    var entry: StoredEntry?

    init(_ reply: RedisValue) throws(StampedeError) {
        guard case .array(let parts) = reply, parts.count >= 6,
              let state = parts[0].string.flatMap(State.init(rawValue:)),
              let now = parts[1].int, let role = parts[2].string.flatMap(Role.init(rawValue:)),
              let fence = parts[3].int, let lockTTL = parts[4].int, let corrupt = parts[5].int
        else {
            throw StampedeError(.redisUnavailable, "unexpected reply from the lease-get script: \(reply)")
        }
        self.state = state
        self.now = now
        self.role = role
        self.fence = fence
        self.lockTTL = lockTTL
        self.wasCorrupt = corrupt == 1
        // The entry's fields follow as the script read them: v, f, fu, su, d, n.
        if parts.count >= 12, let value = parts[6].bytes, let freshUntil = parts[8].int, let staleUntil = parts[9].int {
            entry = StoredEntry(
                value: value, freshUntil: freshUntil, staleUntil: staleUntil, loadDuration: parts[10].int ?? 0,
                isNegative: parts[11].string == "1")
        } else {
            entry = nil
        }
    }
}
