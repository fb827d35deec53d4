//! The RDP and VNC clients tunnelkit knows on each OS, and how each is started. The list is plain
//! data for every OS at once (no `cfg`), so all of it is tested on any machine: the caller says
//! which OS it runs on ([`Os::current`]) and which programs exist.

use std::path::PathBuf;

use super::{OpenError, Protocol};

/// The operating systems whose clients differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Windows.
    Windows,
    /// macOS.
    MacOs,
    /// Linux, the BSDs and other Unix systems; also WSL, where Windows programs are on PATH
    /// with their `.exe`.
    Unix,
}

impl Os {
    /// The OS a [`std::env::consts::OS`] value names.
    pub fn from_name(name: &str) -> Os {
        match name {
            "windows" => Os::Windows,
            "macos" => Os::MacOs,
            _ => Os::Unix,
        }
    }

    /// The OS this program runs on.
    pub fn current() -> Os {
        Os::from_name(std::env::consts::OS)
    }
}

/// How a client is told where to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `{host}` and `{port}` in its arguments.
    Address,
    /// A `.rdp` file ([`super::rdp_file`]) whose path is `{file}` in its arguments; the file
    /// is removed once the client has exited.
    RdpFile,
}

/// A client tunnelkit knows: a program and its arguments, with `{host}` and `{port}` (or
/// `{file}`, the `.rdp` file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownClient {
    /// The OS it is tried on.
    pub os: Os,
    /// What it speaks.
    pub protocol: Protocol,
    /// The program, looked up on PATH (on Windows with the suffixes of `%PATHEXT%`).
    pub program: &'static str,
    /// Its arguments.
    pub args: &'static [&'static str],
    /// What its arguments carry.
    pub input: Input,
}

const fn known(
    os: Os,
    protocol: Protocol,
    program: &'static str,
    args: &'static [&'static str],
    input: Input,
) -> KnownClient {
    KnownClient {
        os,
        protocol,
        program,
        args,
        input,
    }
}

/// The clients tried on each OS, in order of preference.
pub const KNOWN_CLIENTS: &[KnownClient] = &[
    // Windows: Remote Desktop Connection, part of every edition. Given a .rdp file rather than
    // `/v:` so that it asks for the credentials before connecting (`prompt for credentials`).
    known(
        Os::Windows,
        Protocol::Rdp,
        "mstsc",
        &["{file}"],
        Input::RdpFile,
    ),
    // TigerVNC's, RealVNC's and UltraVNC's viewers are all vncviewer.exe, and all read
    // `host::port` as a TCP port (`host:N` would be display N, port 5900+N).
    known(
        Os::Windows,
        Protocol::Vnc,
        "vncviewer",
        &["{host}::{port}"],
        Input::Address,
    ),
    // macOS, RDP: Windows App (formerly Microsoft Remote Desktop) registers for .rdp files,
    // which is how both open a connection someone hands them (a double-click). Microsoft
    // documents the `rdp://full%20address=s:...` URL as legacy, only for the old macOS, iOS
    // and Android clients, and the `ms-rd:` URL that replaces it takes no address. `-W` waits
    // until the app quits, so the file is still there when it reads it; it is removed after.
    known(
        Os::MacOs,
        Protocol::Rdp,
        "open",
        &["-W", "{file}"],
        Input::RdpFile,
    ),
    // macOS, VNC: Screen Sharing, the registered handler of vnc:// URLs.
    known(
        Os::MacOs,
        Protocol::Vnc,
        "open",
        &["vnc://{host}:{port}"],
        Input::Address,
    ),
    known(
        Os::Unix,
        Protocol::Rdp,
        "xfreerdp",
        &["/v:{host}:{port}"],
        Input::Address,
    ),
    known(
        Os::Unix,
        Protocol::Rdp,
        "xfreerdp3",
        &["/v:{host}:{port}"],
        Input::Address,
    ),
    known(
        Os::Unix,
        Protocol::Rdp,
        "wlfreerdp",
        &["/v:{host}:{port}"],
        Input::Address,
    ),
    known(
        Os::Unix,
        Protocol::Rdp,
        "wlfreerdp3",
        &["/v:{host}:{port}"],
        Input::Address,
    ),
    known(
        Os::Unix,
        Protocol::Rdp,
        "remmina",
        &["-c", "rdp://{host}:{port}"],
        Input::Address,
    ),
    // WSL: Windows' own client, by its full name. Given the address, not a file: a file in
    // the Linux /tmp would need a Windows path.
    known(
        Os::Unix,
        Protocol::Rdp,
        "mstsc.exe",
        &["/v:{host}:{port}"],
        Input::Address,
    ),
    known(
        Os::Unix,
        Protocol::Vnc,
        "vncviewer",
        &["{host}::{port}"],
        Input::Address,
    ),
    known(
        Os::Unix,
        Protocol::Vnc,
        "xtigervncviewer",
        &["{host}::{port}"],
        Input::Address,
    ),
    known(
        Os::Unix,
        Protocol::Vnc,
        "remmina",
        &["-c", "vnc://{host}:{port}"],
        Input::Address,
    ),
];

/// What to install (or check) when no client for `protocol` is found on `os`.
pub fn install_hint(os: Os, protocol: Protocol) -> &'static str {
    match (os, protocol) {
        (Os::Unix, Protocol::Rdp) => {
            "install freerdp2-x11 (xfreerdp), freerdp2-wayland (wlfreerdp), or remmina with \
             remmina-plugin-rdp"
        }
        (Os::Unix, Protocol::Vnc) => {
            "install tigervnc-viewer (vncviewer), or remmina with remmina-plugin-vnc"
        }
        (Os::Windows, Protocol::Rdp) => {
            "mstsc.exe (Remote Desktop Connection) is part of Windows: check that \
             %SystemRoot%\\System32 is on PATH"
        }
        (Os::Windows, Protocol::Vnc) => {
            "install TigerVNC, RealVNC Viewer or UltraVNC and put the folder of its \
             vncviewer.exe on PATH"
        }
        (Os::MacOs, _) => "/usr/bin/open is part of macOS: check that /usr/bin is on PATH",
    }
}

/// The client chosen: its command line (program path first) and what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The program's path, then its arguments with their placeholders.
    pub argv: Vec<String>,
    /// Whether it needs a `.rdp` file.
    pub input: Input,
}

/// The first known client of `os` for `protocol` that `find` locates.
pub fn choose(
    os: Os,
    protocol: Protocol,
    find: impl Fn(&str) -> Option<PathBuf>,
) -> Result<Chosen, OpenError> {
    let candidates: Vec<&KnownClient> = KNOWN_CLIENTS
        .iter()
        .filter(|c| c.os == os && c.protocol == protocol)
        .collect();
    for c in &candidates {
        if let Some(path) = find(c.program) {
            let mut argv = vec![path.to_string_lossy().into_owned()];
            argv.extend(c.args.iter().map(|a| a.to_string()));
            return Ok(Chosen {
                argv,
                input: c.input,
            });
        }
    }
    Err(OpenError::NoClient {
        protocol,
        tried: candidates
            .iter()
            .map(|c| c.program)
            .collect::<Vec<_>>()
            .join(", "),
        hint: install_hint(os, protocol),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fill;
    use super::*;

    /// Every program is found, as `/bin/NAME`.
    fn everything(p: &str) -> Option<PathBuf> {
        Some(PathBuf::from(format!("/bin/{p}")))
    }

    #[test]
    fn the_os_is_told_by_its_rust_name() {
        assert_eq!(Os::from_name("windows"), Os::Windows);
        assert_eq!(Os::from_name("macos"), Os::MacOs);
        assert_eq!(Os::from_name("linux"), Os::Unix);
        assert_eq!(Os::from_name("freebsd"), Os::Unix);
        assert_eq!(Os::current(), Os::from_name(std::env::consts::OS));
    }

    #[test]
    fn windows_opens_a_rdp_file_with_mstsc_and_vnc_with_vncviewer() {
        let rdp = choose(Os::Windows, Protocol::Rdp, everything).unwrap();
        assert_eq!(rdp.input, Input::RdpFile);
        assert_eq!(rdp.argv, ["/bin/mstsc", "{file}"]);
        let vnc = choose(Os::Windows, Protocol::Vnc, everything).unwrap();
        assert_eq!(vnc.input, Input::Address);
        assert_eq!(
            fill(&vnc.argv, "127.0.0.5", 5901, None),
            ["/bin/vncviewer", "127.0.0.5::5901"]
        );
        // No Unix client is tried on Windows, and the hint is Windows's.
        let e = choose(Os::Windows, Protocol::Rdp, |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(tried mstsc)"), "{e}");
        assert!(e.contains("%SystemRoot%\\System32"), "{e}");
        let e = choose(Os::Windows, Protocol::Vnc, |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(tried vncviewer)"), "{e}");
        assert!(e.contains("TigerVNC, RealVNC Viewer or UltraVNC"), "{e}");
    }

    #[test]
    fn macos_waits_on_the_rdp_file_and_opens_vnc_in_screen_sharing() {
        let rdp = choose(Os::MacOs, Protocol::Rdp, everything).unwrap();
        assert_eq!(rdp.input, Input::RdpFile);
        let file = std::path::Path::new("/tmp/tunnelkit-x.rdp");
        assert_eq!(
            fill(&rdp.argv, "127.0.0.1", 40001, Some(file)),
            ["/bin/open", "-W", "/tmp/tunnelkit-x.rdp"]
        );
        let vnc = choose(Os::MacOs, Protocol::Vnc, everything).unwrap();
        assert_eq!(vnc.input, Input::Address);
        assert_eq!(
            fill(&vnc.argv, "[::1]", 5900, None),
            ["/bin/open", "vnc://[::1]:5900"]
        );
        let e = choose(Os::MacOs, Protocol::Vnc, |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(tried open)"), "{e}");
    }

    #[test]
    fn unix_tries_freerdp_then_remmina_then_wsl_mstsc_by_address() {
        let argv = |found: &'static str, protocol| {
            let chosen = choose(Os::Unix, protocol, |p| {
                (p == found).then(|| PathBuf::from(format!("/usr/bin/{p}")))
            })
            .unwrap();
            assert_eq!(chosen.input, Input::Address, "{found}");
            fill(&chosen.argv, "127.0.0.1", 40001, None)
        };
        assert_eq!(
            argv("wlfreerdp", Protocol::Rdp),
            ["/usr/bin/wlfreerdp", "/v:127.0.0.1:40001"]
        );
        assert_eq!(
            argv("remmina", Protocol::Rdp),
            ["/usr/bin/remmina", "-c", "rdp://127.0.0.1:40001"]
        );
        assert_eq!(
            argv("mstsc.exe", Protocol::Rdp),
            ["/usr/bin/mstsc.exe", "/v:127.0.0.1:40001"]
        );
        assert_eq!(
            argv("remmina", Protocol::Vnc),
            ["/usr/bin/remmina", "-c", "vnc://127.0.0.1:40001"]
        );
        // All installed: the first in the list.
        let vnc = choose(Os::Unix, Protocol::Vnc, everything).unwrap();
        assert_eq!(vnc.argv, ["/bin/vncviewer", "{host}::{port}"]);
        // `open` (macOS) is never tried on Linux, even where a program of that name exists.
        assert!(KNOWN_CLIENTS
            .iter()
            .filter(|c| c.os == Os::Unix)
            .all(|c| c.program != "open" && c.input == Input::Address));
    }

    #[test]
    fn no_client_names_what_was_tried_and_the_packages() {
        let e = choose(Os::Unix, Protocol::Rdp, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "no RDP client found on PATH (tried xfreerdp, xfreerdp3, wlfreerdp, wlfreerdp3, \
                 remmina, mstsc.exe): install freerdp2-x11"
            ),
            "{e}"
        );
        let e = choose(Os::Unix, Protocol::Vnc, |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(tried vncviewer, xtigervncviewer, remmina): install tigervnc-viewer"),
            "{e}"
        );
    }

    #[test]
    fn every_os_has_a_client_for_each_protocol_and_file_clients_take_the_file() {
        for os in [Os::Windows, Os::MacOs, Os::Unix] {
            for protocol in [Protocol::Rdp, Protocol::Vnc] {
                assert!(
                    choose(os, protocol, everything).is_ok(),
                    "{os:?} {protocol:?}"
                );
            }
        }
        for c in KNOWN_CLIENTS {
            let takes_file = c.args.contains(&"{file}");
            let takes_address = c.args.iter().any(|a| a.contains("{host}:"));
            assert_eq!(takes_file, c.input == Input::RdpFile, "{c:?}");
            assert_eq!(takes_address, c.input == Input::Address, "{c:?}");
            assert!(c.input == Input::Address || c.protocol == Protocol::Rdp);
        }
    }
}
