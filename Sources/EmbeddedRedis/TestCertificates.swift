import Foundation

/// A throwaway certificate authority and the certificates a TLS test needs, made with
/// `openssl` (EC P-256 keys) in a folder of their own and valid for two days: a server
/// certificate for `localhost` and `127.0.0.1`, a client certificate, an expired server
/// certificate, one for another host, and a second authority that signed none of them.
public final class TestCertificates: Sendable {
    /// A certificate and its private key, as PEM files.
    public struct Pair: Sendable {
        public let certificateFile: String
        public let privateKeyFile: String
    }

    public let directory: URL
    /// The authority that signed every certificate here but ``otherAuthorityFile``.
    public let authorityFile: String
    /// An authority that signed none of them.
    public let otherAuthorityFile: String
    /// For `localhost` and `127.0.0.1`.
    public let server: Pair
    /// Expired a day after it became valid, years ago; for `localhost` and `127.0.0.1`.
    public let expiredServer: Pair
    /// For `redis.example.com` only.
    public let otherHostServer: Pair
    /// A client's, for mutual TLS.
    public let client: Pair

    /// Makes the authority and the certificates (about 0.2 s).
    ///
    /// - Throws: ``RedisServer/StartError`` when `openssl` is missing or fails.
    public init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stampede-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        authorityFile = path("ca.crt")
        otherAuthorityFile = path("other-ca.crt")
        server = Pair(certificateFile: path("server.crt"), privateKeyFile: path("server.key"))
        expiredServer = Pair(certificateFile: path("expired.crt"), privateKeyFile: path("expired.key"))
        otherHostServer = Pair(certificateFile: path("other-host.crt"), privateKeyFile: path("other-host.key"))
        client = Pair(certificateFile: path("client.crt"), privateKeyFile: path("client.key"))
        do {
            try make()
        } catch {
            remove()
            throw error
        }
    }

    private func make() throws {
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try openssl(["req", "-x509"] + key + ["-days", "2", "-subj", "/CN=Stampede Test CA", "-keyout", "ca.key", "-out", "ca.crt"])
        try openssl(["req", "-x509"] + key + ["-days", "2", "-subj", "/CN=Another CA", "-keyout", "other-ca.key", "-out", "other-ca.crt"])
        let names = "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        for (name, altNames) in [("server", names), ("client", names), ("other-host", "subjectAltName=DNS:redis.example.com\n"), ("expired", names)] {
            try Data(altNames.utf8).write(to: directory.appendingPathComponent("\(name).ext"))
            try openssl(["req"] + key + ["-subj", "/CN=\(name)", "-keyout", "\(name).key", "-out", "\(name).csr"])
            if name != "expired" {
                try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                             "-days", "2", "-extfile", "\(name).ext", "-out", "\(name).crt"])
            }
        }
        // `openssl x509` cannot date a certificate in the past; `openssl ca` can.
        try Data("""
            [ ca ]
            default_ca = test
            [ test ]
            database = index.txt
            new_certs_dir = .
            serial = serial
            default_md = sha256
            policy = anything
            [ anything ]
            commonName = supplied
            """.utf8).write(to: directory.appendingPathComponent("ca.cnf"))
        try Data().write(to: directory.appendingPathComponent("index.txt"))
        try Data("01\n".utf8).write(to: directory.appendingPathComponent("serial"))
        try openssl(["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "expired.csr",
                     "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile", "expired.ext", "-out", "expired.crt"])
    }

    private func openssl(_ arguments: [String]) throws {
        let (status, output) = try ChildProcess.run(URL(fileURLWithPath: "/usr/bin/env"), ["openssl"] + arguments, in: directory)
        guard status == 0 else {
            throw RedisServer.StartError(description: "openssl \(arguments.first ?? "") failed (is openssl installed?): \(output.suffix(400))")
        }
    }

    /// Removes the folder.
    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { remove() }
}
