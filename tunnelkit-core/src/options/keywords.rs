//! The tables of OpenSSH client keywords: which tunnelkit uses ([`SUPPORTED`]), which it accepts
//! without using because their absence cannot change where or how it connects ([`HARMLESS`]),
//! and which it refuses ([`REFUSED`], [`REFUSED_UNLESS`]), each with the reason that docs/ssh-setup.md
//! ("Your existing ssh setup") shows. The parsing of values is in the parent module.

/// Option keywords tunnelkit uses, as OpenSSH spells them.
pub const SUPPORTED: &[&str] = &[
    "AddressFamily",
    "BatchMode",
    "CertificateFile",
    "ChallengeResponseAuthentication",
    "Ciphers",
    "Compression",
    "ConnectionAttempts",
    "ConnectTimeout",
    "DynamicForward",
    "ExitOnForwardFailure",
    "GatewayPorts",
    "GlobalKnownHostsFile",
    "HashKnownHosts",
    "HostKeyAlias",
    "HostName",
    "IdentitiesOnly",
    "IdentityAgent",
    "IdentityFile",
    "IgnoreUnknown",
    "KbdInteractiveAuthentication",
    "LocalForward",
    "PasswordAuthentication",
    "Port",
    "ProxyCommand",
    "ProxyJump",
    "RekeyLimit",
    "RemoteForward",
    "ServerAliveCountMax",
    "ServerAliveInterval",
    "StrictHostKeyChecking",
    "User",
    "UserKnownHostsFile",
];

/// OpenSSH client keywords that tunnelkit accepts without using them, because their absence
/// cannot change where tunnelkit connects, how it authenticates or what it checks: they concern
/// interactive sessions, X11, the agent, multiplexing, logging or cosmetics. `-v` lists the ones
/// a configuration used. Each has the reason, shown in docs/ssh-setup.md, "Your existing ssh setup".
pub const HARMLESS: &[(&str, &str)] = &[
    ("AddKeysToAgent", "adds keys to the agent after use; connecting is the same"),
    ("CanonicalDomains", "used only with CanonicalizeHostname, which is refused"),
    ("CanonicalizeFallbackLocal", "used only with CanonicalizeHostname, which is refused"),
    ("CanonicalizeMaxDots", "used only with CanonicalizeHostname, which is refused"),
    ("CanonicalizePermittedCNAMEs", "used only with CanonicalizeHostname, which is refused"),
    ("ChannelTimeout", "idle channels stay open; nothing else changes"),
    ("ControlMaster", "ssh's control sockets are not used (another protocol); the agent shares one login between its profiles by itself (docs/profiles-and-agent.md: One login for many tunnels)"),
    ("ControlPath", "ssh's control sockets are not used (another protocol); the agent shares one login between its profiles by itself (docs/profiles-and-agent.md: One login for many tunnels)"),
    ("ControlPersist", "ssh's control sockets are not used (another protocol); the agent shares one login between its profiles by itself (docs/profiles-and-agent.md: One login for many tunnels)"),
    ("EnableEscapeCommandline", "no terminal session"),
    ("EnableSSHKeysign", "host-based authentication is not offered"),
    ("EscapeChar", "no terminal session"),
    ("FingerprintHash", "fingerprints are shown as SHA256"),
    ("ForkAfterAuthentication", "handled by the command line's -f where implemented"),
    ("ForwardAgent", "no session is opened, so the agent is never forwarded"),
    ("ForwardX11", "no session is opened"),
    ("ForwardX11Timeout", "no session is opened"),
    ("ForwardX11Trusted", "no session is opened"),
    ("GSSAPIAuthentication", "Kerberos is not offered: a host that accepts only it refuses the login with a clear error (Debian's /etc/ssh/ssh_config sets it)"),
    ("GSSAPIDelegateCredentials", "Kerberos is not offered"),
    ("HostbasedAcceptedAlgorithms", "host-based authentication is not offered"),
    ("HostbasedKeyTypes", "host-based authentication is not offered"),
    ("IPQoS", "packet priority only"),
    ("KbdInteractiveDevices", "the server's default devices are used"),
    ("LogLevel", "tunnelkit's log level is -v/-q"),
    ("LogVerbose", "tunnelkit's log level is -v/-q"),
    ("NoHostAuthenticationForLocalhost", "without it, localhost's key is checked: stricter"),
    ("NumberOfPasswordPrompts", "a refused password is not asked again"),
    ("ObscureKeystrokeTiming", "no terminal session"),
    ("PermitLocalCommand", "LocalCommand is refused"),
    ("PermitRemoteOpen", "limits dynamic remote forwards (-R port), which are refused"),
    ("RemoteCommand", "no command is run (-N)"),
    ("RequestTTY", "no terminal session"),
    ("SendEnv", "no session is opened"),
    ("SessionType", "no session is opened"),
    ("SetEnv", "no session is opened"),
    ("StdinNull", "stdin is never read by the tunnel"),
    ("StreamLocalBindMask", "no Unix socket forwards"),
    ("StreamLocalBindUnlink", "no Unix socket forwards"),
    ("SyslogFacility", "tunnelkit logs to stderr"),
    ("TCPKeepAlive", "TCP keepalive is always on, besides ServerAlive probes"),
    ("Tag", "Match tagged is refused"),
    ("UpdateHostKeys", "known_hosts is not updated from the server's extra keys"),
    ("UseKeychain", "macOS only"),
    ("UsePrivilegedPort", "obsolete"),
    ("VerifyHostKeyDNS", "without it, DNS is not trusted for host keys: stricter"),
    ("VisualHostKey", "cosmetic"),
    ("XAuthLocation", "no X11 forwarding"),
];

/// OpenSSH keywords that decide where or how ssh connects, authenticates or checks, and that
/// tunnelkit does not implement: an error naming the keyword (with file and line from
/// ssh_config), never silently ignored. Some are accepted with the value that means "off"
/// ([`REFUSED_UNLESS`]).
pub const REFUSED: &[(&str, &str)] = &[
    (
        "BindAddress",
        "the local source address is not configurable",
    ),
    ("BindInterface", "the local interface is not configurable"),
    (
        "CASignatureAlgorithms",
        "the CA signature algorithms cannot be restricted",
    ),
    (
        "HostKeyAlgorithms",
        "the host key algorithms cannot be restricted",
    ),
    (
        "KexAlgorithms",
        "the key exchange algorithms cannot be restricted",
    ),
    (
        "KnownHostsCommand",
        "host keys come only from known_hosts files",
    ),
    ("LocalCommand", "no local command is run"),
    ("MACs", "the MAC algorithms cannot be restricted"),
    (
        "PKCS11Provider",
        "keys on PKCS#11 tokens are not supported (use the agent)",
    ),
    (
        "PreferredAuthentications",
        "the authentication order is fixed: agent, keys, password, keyboard-interactive",
    ),
    (
        "PubkeyAcceptedAlgorithms",
        "the public key algorithms cannot be restricted",
    ),
    (
        "PubkeyAcceptedKeyTypes",
        "the public key algorithms cannot be restricted",
    ),
    ("RequiredRSASize", "the minimum RSA key size cannot be set"),
    (
        "RevokedHostKeys",
        "revoked host keys are read only from @revoked lines in known_hosts",
    ),
    (
        "SecurityKeyProvider",
        "FIDO security keys are not supported (use the agent)",
    ),
];

/// Keywords refused unless their value is one of those listed (which means "off", or the
/// default tunnelkit follows anyway).
pub const REFUSED_UNLESS: &[(&str, &[&str], &str)] = &[
    (
        "CanonicalizeHostname",
        &["no"],
        "host names are never canonicalized",
    ),
    (
        "CheckHostIP",
        &["no"],
        "the host's address is not checked against known_hosts",
    ),
    (
        "HostbasedAuthentication",
        &["no"],
        "host-based authentication is not offered",
    ),
    (
        "ProxyUseFdpass",
        &["no"],
        "a ProxyCommand's descriptor is not received; its stdin/stdout carry the connection",
    ),
    (
        "PubkeyAuthentication",
        &["yes"],
        "public key authentication cannot be turned off",
    ),
    ("Tunnel", &["no"], "no tun/tap forwarding"),
    ("TunnelDevice", &["any:any"], "no tun/tap forwarding"),
];

/// Every OpenSSH client keyword that tunnelkit accepts without using (see [`HARMLESS`]).
pub fn ignored_keywords() -> impl Iterator<Item = &'static str> {
    HARMLESS.iter().map(|(k, _)| *k)
}
