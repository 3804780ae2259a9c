import StampedeRedis

extension CacheFormat {
/// What the lease-get script (``CacheScripts/leaseGet``) decided.
struct LeaseGetReply: Sendable {
    enum State: Sendable {
        case fresh(StoredEntry)
        /// Past fresh, before stale-until.
        case stale(StoredEntry)
        case miss
    }
    enum Role: String, Sendable {
        /// Fresh, and no early refresh wanted.
        case none
        /// Took the lease: this caller loads.
        case leader
        /// Another caller holds the lease.
        case follower
    }

    /// What the script found foreign or unreadable under the key's names and replaced.
    struct Repairs: OptionSet, Sendable {
        let rawValue: Int
        /// The entry, deleted: the lookup is a miss.
        static let entry = Repairs(rawValue: 1)
        /// A lock without expiry, taken over.
        static let lock = Repairs(rawValue: 2)
        /// A fence that was not a number of ours, replaced.
        static let fence = Repairs(rawValue: 4)

        /// For the log: "entry", "lock", "fence", joined.
        var names: String {
            [(Self.entry, "entry"), (.lock, "lock"), (.fence, "fence")].filter { contains($0.0) }.map(\.1).joined(separator: ", ")
        }
    }

    var state: State
    /// Redis's clock when it decided, ms since the epoch.
    var now: Int
    var role: Role
    /// The new fence when this caller became the leader.
    var fence: Int
    /// How long the current leader's lease still runs, ms (for followers).
    var lockTTL: Int
    var repairs: Repairs

    /// The entry, fresh or stale, if there is one.
    var entry: StoredEntry? {
        switch state {
        case .fresh(let entry), .stale(let entry): entry
        case .miss: nil
        }
    }

    init(state: State, now: Int, role: Role, fence: Int = 0, lockTTL: Int = 0, repairs: Repairs = []) {
        self.state = state
        self.now = now
        self.role = role
        self.fence = fence
        self.lockTTL = lockTTL
        self.repairs = repairs
    }

    /// - Throws: ``StampedeError/Code/redisUnavailable`` for a reply of another shape (a
    ///   script of another version), never a trap: nothing Redis returns may stop the process.
    init(_ reply: RedisValue) throws(StampedeError) {
        guard case .array(let parts) = reply, parts.count >= 6,
              let state = parts[0].string, let now = parts[1].int,
              let role = parts[2].string.flatMap(Role.init(rawValue:)),
              let fence = parts[3].int, let lockTTL = parts[4].int, let repairs = parts[5].int
        else {
            throw StampedeError(.redisUnavailable, "unexpected reply from the lease-get script: \(reply)")
        }
        // The entry's fields follow as the script read them: v, f, fu, su, d, n.
        var entry: StoredEntry?
        if parts.count >= 12, let value = parts[6].bytes, let freshUntil = parts[8].int, let staleUntil = parts[9].int,
           let loadDuration = parts[10].int {
            entry = StoredEntry(
                value: value, freshUntil: freshUntil, staleUntil: staleUntil, loadDuration: loadDuration,
                isNegative: parts[11].string == "1")
        }
        switch (state, entry) {
        case ("fresh", let entry?): self.state = .fresh(entry)
        case ("stale", let entry?): self.state = .stale(entry)
        case ("miss", _): self.state = .miss
        default:
            throw StampedeError(.redisUnavailable, "unexpected reply from the lease-get script: \(reply)")
        }
        self.now = now
        self.role = role
        self.fence = fence
        self.lockTTL = lockTTL
        self.repairs = Repairs(rawValue: repairs)
    }
}
}
