@_spi(Benchmarks) @testable import Stampede
import Testing

/// The lookup's decisions, without Redis or real time: every reply and event, under every
/// combination of the policies that change them.
@Suite("LookupMachine", .timeLimit(.minutes(2)))
struct LookupMachineTests {
    typealias Reply = CacheFormat.LeaseGetReply

    /// Redis's clock at the reply, ms since the epoch.
    static let redisNow = 1_700_000_000_000
    static let start = ContinuousClock.now

    /// An entry fresh until `fresh` ms after `redisNow` (negative: stale since) and kept
    /// `kept` ms after it.
    static func entry(fresh: Int, kept: Int) -> StoredEntry {
        StoredEntry(value: Array("\"old\"".utf8), freshUntil: redisNow + fresh, staleUntil: redisNow + kept, loadDuration: 5)
    }

    /// The policies whose combinations change a decision.
    struct Policies: CustomTestStringConvertible, Sendable {
        var staleWhileRevalidate: Duration
        var staleIfError: Duration
        var whenWaitTimesOut: CachePolicy.WaitTimedOut
        var whenRedisUnavailable: CachePolicy.RedisUnavailable

        var policy: CachePolicy {
            CachePolicy(
                timeToLive: .seconds(60), staleWhileRevalidate: staleWhileRevalidate, staleIfError: staleIfError,
                earlyRefreshBeta: nil, waitTimeout: .seconds(20),
                whenRedisUnavailable: whenRedisUnavailable, whenWaitTimesOut: whenWaitTimesOut)
        }

        var testDescription: String {
            "swr \(staleWhileRevalidate), sie \(staleIfError), wait timeout \(whenWaitTimesOut), Redis down \(whenRedisUnavailable)"
        }

        static let all: [Policies] = [Duration.zero, .seconds(10)].flatMap { swr in
            [Duration.zero, .seconds(60)].flatMap { sie in
                [CachePolicy.WaitTimedOut.fail, .loadLocally].flatMap { wait in
                    [CachePolicy.RedisUnavailable.fail, .loadLocally].map { down in
                        Policies(staleWhileRevalidate: swr, staleIfError: sie, whenWaitTimesOut: wait, whenRedisUnavailable: down)
                    }
                }
            }
        }
    }

    func machine(_ policies: Policies, listening: Bool = true) -> LookupMachine {
        LookupMachine(key: "k", policy: policies.policy, startedAt: Self.start, isListening: listening)
    }

    // MARK: Replies

    @Test("a fresh entry is served; a leader beside it (early refresh) refreshes it", arguments: Policies.all)
    func fresh(_ policies: Policies) {
        let entry = Self.entry(fresh: 1_000, kept: 90_000)
        for (role, refresh) in [(Reply.Role.none, false), (.follower, false), (.leader, true)] {
            var machine = machine(policies)
            #expect(machine.received(Reply(state: .fresh(entry), now: Self.redisNow, role: role), now: Self.start)
                == .serve(entry, .fresh, refresh: refresh))
        }
    }

    @Test("a stale entry within stale-while-revalidate is served, refreshed by the leader; past it, the leader loads and the others wait",
          arguments: Policies.all)
    func stale(_ policies: Policies) {
        // Stale for 5 s: within a 10 s stale-while-revalidate window, past a zero one.
        let entry = Self.entry(fresh: -5_000, kept: 90_000)
        let withinWindow = policies.staleWhileRevalidate > .seconds(5)
        for role in [Reply.Role.none, .follower, .leader] {
            var machine = machine(policies)
            let action = machine.received(Reply(state: .stale(entry), now: Self.redisNow, role: role, lockTTL: 3_000), now: Self.start)
            switch (withinWindow, role) {
            case (true, _): #expect(action == .serve(entry, .stale, refresh: role == .leader))
            case (false, .leader): #expect(action == .lead)
            case (false, _): #expect(action == .wait(until: Self.start + .milliseconds(3_002)))
            }
        }
    }

    @Test("refreshing by the lease holder: the leader of a stale or early-refreshed value loads; the others are served at once")
    func refreshByTheLeaseHolder() {
        var policy = Policies(staleWhileRevalidate: .seconds(10), staleIfError: .zero, whenWaitTimesOut: .fail, whenRedisUnavailable: .fail).policy
        policy.staleRefresh = .byTheLeaseHolder
        let stale = Self.entry(fresh: -5_000, kept: 90_000), fresh = Self.entry(fresh: 1_000, kept: 90_000)
        for (state, entry, served) in [(Reply.State.stale(stale), stale, LookupMachine.Served.stale), (.fresh(fresh), fresh, .fresh)] {
            for role in [Reply.Role.none, .follower, .leader] {
                var machine = LookupMachine(key: "k", policy: policy, startedAt: Self.start, isListening: true)
                let action = machine.received(Reply(state: state, now: Self.redisNow, role: role, lockTTL: 3_000), now: Self.start)
                #expect(action == (role == .leader ? .lead : .serve(entry, served, refresh: false)), "\(served) \(role)")
            }
        }
    }

    @Test("on a miss the leader loads, with no stale value to serve", arguments: Policies.all)
    func missLeads(_ policies: Policies) throws {
        var machine = machine(policies)
        #expect(machine.received(Reply(state: .miss, now: Self.redisNow, role: .leader, fence: 7), now: Self.start) == .lead)
        let leader = try #require(machine.leader())
        #expect(leader.stale == nil && leader.servableOnError == nil && leader.softTimeout == nil)
    }

    @Test("a follower that is not subscribed yet subscribes, then reads again; if it cannot, it waits on its timer")
    func followerSubscribesFirst() {
        let policies = Policies.all[0]
        var machine = machine(policies, listening: false)
        let later = Self.start + .seconds(1)
        #expect(machine.received(Reply(state: .miss, now: Self.redisNow, role: .follower, lockTTL: 500), now: later)
            == .startListening(within: .seconds(19)))
        #expect(machine.listening(started: true, now: later) == .readAgain)
        // Subscribed now: the next follower reply waits at once.
        #expect(machine.received(Reply(state: .miss, now: Self.redisNow, role: .follower, lockTTL: 500), now: later)
            == .wait(until: later + .milliseconds(502)))

        var failing = self.machine(policies, listening: false)
        _ = failing.received(Reply(state: .miss, now: Self.redisNow, role: .follower, lockTTL: 500), now: later)
        #expect(failing.listening(started: false, now: later) == .wait(until: later + .milliseconds(502)))
    }

    @Test("a follower waits until the leader's lease ends, never past the wait deadline")
    func followerWaitsForTheLease() {
        var machine = machine(Policies.all[0])
        #expect(machine.received(Reply(state: .miss, now: Self.redisNow, role: .follower, lockTTL: 0), now: Self.start)
            == .wait(until: Self.start + .milliseconds(3)), "an expiring lease is waited for at least 1 ms")
        let late = Self.start + .seconds(15)
        #expect(machine.received(Reply(state: .miss, now: Self.redisNow, role: .follower, lockTTL: 10_000), now: late)
            == .wait(until: Self.start + .seconds(20)), "the deadline counts from the lookup's start, over every round")
    }

    @Test("past the wait deadline: the stale value if stale-if-error allows it, else what the policy says", arguments: Policies.all)
    func waitTimesOut(_ policies: Policies) {
        let entry = Self.entry(fresh: -30_000, kept: 90_000)
        let past = Self.start + .seconds(20)
        for state in [Reply.State.stale(entry), .miss] {
            var machine = machine(policies)
            let action = machine.received(Reply(state: state, now: Self.redisNow, role: .follower, lockTTL: 5_000), now: past)
            if case .stale = state, policies.staleIfError > .seconds(30) {
                #expect(action == .serve(entry, .staleAfterWaitTimeout, refresh: false))
            } else if policies.whenWaitTimesOut == .loadLocally {
                #expect(action == .loadWithoutLease)
            } else {
                guard case .fail(.waitTimedOut, _) = action else {
                    Issue.record("expected waitTimedOut, got \(action)")
                    continue
                }
            }
        }
    }

    @Test("Redis unavailable: fail or load without it, as the policy says", arguments: Policies.all)
    func redisUnavailable(_ policies: Policies) {
        let action = machine(policies).redisFailed()
        switch policies.whenRedisUnavailable {
        case .loadLocally: #expect(action == .loadWithoutRedis)
        case .fail:
            guard case .fail(.redisUnavailable, _) = action else { Issue.record("got \(action)"); return }
        }
    }

    // MARK: Events

    @Test("what a waiting follower does with what it heard", arguments: Policies.all)
    func events(_ policies: Policies) {
        let stale = Self.entry(fresh: -30_000, kept: 90_000)
        let filled = Self.entry(fresh: 60_000, kept: 60_000)
        func heard(_ event: LookupMachine.Event?) -> LookupMachine.Action {
            var machine = machine(policies)
            _ = machine.received(Reply(state: .stale(stale), now: Self.redisNow, role: .follower, lockTTL: 5_000), now: Self.start)
            return machine.heard(event, now: Self.start + .seconds(1))
        }
        #expect(heard(nil) == .readAgain, "its timer: read again (the leader may have died)")
        #expect(heard(.init(kind: .filled, fill: filled)) == .serve(filled, .filled, refresh: false), "the value came with the message")
        #expect(heard(.init(kind: .filled, fill: nil)) == .readAgain, "a large value is read back")
        #expect(heard(.init(kind: .invalidated)) == .readAgain)
        #expect(heard(.init(kind: .unknown)) == .readAgain, "messages may have been missed")
        let failed = heard(.init(kind: .failed))
        if policies.staleIfError > .seconds(30) {
            #expect(failed == .serve(stale, .stale, refresh: false))
        } else {
            guard case .fail(.loadFailedElsewhere, _) = failed else { Issue.record("got \(failed)"); return }
        }
    }
}

@Suite("LeaderMachine", .timeLimit(.minutes(2)))
struct LeaderMachineTests {
    typealias Reply = CacheFormat.LeaseGetReply
    static let redisNow = LookupMachineTests.redisNow

    func leader(_ policy: CachePolicy, state: Reply.State) -> LeaderMachine {
        LeaderMachine(key: "k", policy: policy, reply: Reply(state: state, now: Self.redisNow, role: .leader, fence: 3))
    }

    @Test("with a stale value and a soft timeout, the callers get the stale value when the soft timeout passes first")
    func softTimeout() {
        let stale = LookupMachineTests.entry(fresh: -5_000, kept: 90_000)
        let policy = CachePolicy(loaderSoftTimeout: .milliseconds(200))
        let withStale = leader(policy, state: .stale(stale))
        #expect(withStale.softTimeout == .milliseconds(200))
        #expect(withStale.softTimeoutPassed() == .stale(stale))
        #expect(leader(policy, state: .miss).softTimeout == nil, "nothing to serve: wait for the load")
        #expect(leader(CachePolicy(), state: .stale(stale)).softTimeout == nil, "no soft timeout set")
        let expired = LookupMachineTests.entry(fresh: -5_000, kept: -1)
        #expect(leader(policy, state: .stale(expired)).stale == nil, "past stale-until")
    }

    @Test("the load's result, or its error: the stale value in its place within stale-if-error")
    func loadEnded() {
        struct Down: Error {}
        let stale = LookupMachineTests.entry(fresh: -5_000, kept: 90_000)
        for (sie, servable) in [(Duration.zero, false), (.seconds(4), false), (.seconds(6), true)] {
            let leader = leader(CachePolicy(staleIfError: sie), state: .stale(stale))
            #expect(leader.loadEnded(.success([1])) == .bytes([1]))
            #expect(leader.loadEnded(.success(nil)) == .bytes(nil))
            #expect(leader.loadEnded(.failure(Down())) == (servable ? .stale(stale) : .fail(.loaderFailed)), "stale-if-error \(sie)")
        }
    }

    @Test("what the leader writes: a fill with its times, or a failure with the retry delay")
    func write() {
        let policy = CachePolicy(
            timeToLive: .seconds(60), staleWhileRevalidate: .seconds(10), staleIfError: .seconds(30), retryAfterError: .seconds(2),
            jitter: .seconds(4), negativeTimeToLive: .seconds(5), loaderHardTimeout: .seconds(9))
        let leader = leader(policy, state: .miss)
        #expect(leader.write(after: .loaded([1]), jitterDraw: 0.5) == .fill([1], fresh: .seconds(62), stale: .seconds(30)))
        #expect(leader.write(after: .loaded(nil), jitterDraw: 0.5) == .fill(nil, fresh: .seconds(7), stale: .zero))
        struct Down: Error {}
        #expect(leader.write(after: .failed(Down()), jitterDraw: 0) == .reportFailure(retryDelay: .seconds(2), .loaderFailed))
        guard case .reportFailure(_, .code(.loaderTimedOut, _)) = leader.write(after: .timedOut, jitterDraw: 0) else {
            Issue.record("a hard timeout is loaderTimedOut")
            return
        }
        let loss = LeaseLoss(lease: Lease(name: "k", token: "t", fence: FencingToken(3)), reason: .tokenGone)
        guard case .reportFailure(_, .code(.leaseLost, _)) = leader.write(after: .lost(loss), jitterDraw: 0) else {
            Issue.record("a lost lease is leaseLost")
            return
        }
        // Without stale-if-error there is nothing to hold the retries off with.
        let noRetry = self.leader(CachePolicy(staleIfError: .zero, retryAfterError: .seconds(2)), state: .miss)
        #expect(noRetry.write(after: .failed(Down()), jitterDraw: 0) == .reportFailure(retryDelay: .zero, .loaderFailed))
    }
}
