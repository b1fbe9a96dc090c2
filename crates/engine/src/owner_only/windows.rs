//! Owner-only on Windows: a protected DACL with a single entry granting
//! the current user full access. Protected means the parent folder's
//! inheritable entries do not apply, so nobody else is listed (an
//! administrator can still take ownership, as on any Windows system).
//!
//! The descriptor is given to CreateFileW, so a new file never exists
//! without it, and set with SetFileSecurityW on what exists already.
//! SetFileSecurityW rather than SetNamedSecurityInfoW: the latter merges
//! the parent's inheritable entries unless the file's current descriptor
//! is protected (Wine does so even when asked for a protected DACL), and
//! a plain set of one protected descriptor is all this needs.
//!
//! This is the only place in shoal that calls the Win32 security API, and
//! so the only module allowed `unsafe`: every call's result is checked and
//! every buffer it is given is owned here and outlives the call.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, RawHandle};
use std::path::Path;

use windows_sys::Win32::Foundation::{CloseHandle, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Security::{
    AddAccessAllowedAceEx, GetLengthSid, GetTokenInformation, InitializeAcl,
    InitializeSecurityDescriptor, SetFileSecurityW, SetSecurityDescriptorControl,
    SetSecurityDescriptorDacl, TokenUser, ACCESS_ALLOWED_ACE, ACE_FLAGS, ACL, ACL_REVISION,
    CONTAINER_INHERIT_ACE, DACL_SECURITY_INFORMATION, OBJECT_INHERIT_ACE, SECURITY_ATTRIBUTES,
    SECURITY_DESCRIPTOR, SE_DACL_PROTECTED, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, CREATE_ALWAYS, CREATE_NEW, FILE_ALL_ACCESS, FILE_ATTRIBUTE_NORMAL,
    FILE_CREATION_DISPOSITION, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// `SECURITY_DESCRIPTOR_REVISION` (winnt.h).
const SECURITY_DESCRIPTOR_REVISION: u32 = 1;

pub(super) fn create_new(path: &Path) -> io::Result<File> {
    create(path, CREATE_NEW)
}

pub(super) fn replace(path: &Path) -> io::Result<File> {
    create(path, CREATE_ALWAYS)
}

fn create(path: &Path, disposition: FILE_CREATION_DISPOSITION) -> io::Result<File> {
    let descriptor = OwnerOnly::for_current_user(Target::File)?;
    let attributes = SECURITY_ATTRIBUTES {
        nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.as_ptr(),
        bInheritHandle: 0,
    };
    let wide = wide_path(path);
    // SAFETY: `wide` is NUL-terminated and `attributes` (and the
    // descriptor it points to) outlive the call. The handle returned is
    // valid and owned by the File from here on.
    let file = unsafe {
        let handle = CreateFileW(
            wide.as_ptr(),
            GENERIC_WRITE,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            &attributes,
            disposition,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        );
        if handle == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        File::from_raw_handle(handle as RawHandle)
    };
    if disposition == CREATE_ALWAYS {
        // A descriptor given to CreateFileW applies only to a new file;
        // an existing one is emptied, then restricted before any write.
        descriptor.set_on(&wide)?;
    }
    Ok(file)
}

pub(super) fn restrict(path: &Path) -> io::Result<()> {
    let target = if std::fs::metadata(path)?.is_dir() {
        Target::Folder
    } else {
        Target::File
    };
    OwnerOnly::for_current_user(target)?.set_on(&wide_path(path))
}

/// Whether the user's entry is also inherited by what a folder holds.
#[derive(Debug, Clone, Copy)]
enum Target {
    File,
    Folder,
}

/// A security descriptor whose DACL is protected and has one entry: the
/// current user, full access.
struct OwnerOnly {
    /// The ACL, in `u32`s because an ACL must be 4-byte aligned; on the
    /// heap, so `descriptor`'s pointer to it survives moves.
    acl: Vec<u32>,
    descriptor: Box<SECURITY_DESCRIPTOR>,
}

impl OwnerOnly {
    fn for_current_user(target: Target) -> io::Result<OwnerOnly> {
        let user = TokenUserBuffer::current()?;
        let sid = user.sid();
        // SAFETY: `sid` points into `user`, a TOKEN_USER the system filled.
        let sid_len = unsafe { GetLengthSid(sid) } as usize;
        let len = size_of::<ACL>() + size_of::<ACCESS_ALLOWED_ACE>() - size_of::<u32>() + sid_len;
        let mut owner_only = OwnerOnly {
            acl: vec![0u32; len.div_ceil(size_of::<u32>())],
            descriptor: Box::default(),
        };
        let ace_flags: ACE_FLAGS = match target {
            Target::File => 0,
            Target::Folder => OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
        };
        let acl = owner_only.acl.as_mut_ptr().cast::<ACL>();
        let descriptor = owner_only.as_ptr();
        // SAFETY: the ACL buffer holds `len` bytes, enough for the header
        // and one entry with this SID; `sid` is valid while `user` lives;
        // the descriptor is initialised before it is changed, and the ACL
        // it points to lives as long as it does.
        unsafe {
            check(InitializeAcl(acl, len as u32, ACL_REVISION))?;
            check(AddAccessAllowedAceEx(
                acl,
                ACL_REVISION,
                ace_flags,
                FILE_ALL_ACCESS,
                sid,
            ))?;
            check(InitializeSecurityDescriptor(
                descriptor,
                SECURITY_DESCRIPTOR_REVISION,
            ))?;
            check(SetSecurityDescriptorDacl(descriptor, 1, acl, 0))?;
            check(SetSecurityDescriptorControl(
                descriptor,
                SE_DACL_PROTECTED,
                SE_DACL_PROTECTED,
            ))?;
        }
        Ok(owner_only)
    }

    fn as_ptr(&self) -> *mut c_void {
        (&*self.descriptor as *const SECURITY_DESCRIPTOR)
            .cast_mut()
            .cast()
    }

    /// Replaces the DACL of the file or folder `wide` names.
    fn set_on(&self, wide: &[u16]) -> io::Result<()> {
        // SAFETY: `wide` is NUL-terminated; the descriptor is valid and
        // only read by the call.
        unsafe {
            check(SetFileSecurityW(
                wide.as_ptr(),
                DACL_SECURITY_INFORMATION,
                self.as_ptr(),
            ))
        }
    }
}

/// The process token's TOKEN_USER, in an 8-byte-aligned buffer.
#[derive(Debug)]
struct TokenUserBuffer {
    buffer: Vec<u64>,
}

impl TokenUserBuffer {
    fn current() -> io::Result<TokenUserBuffer> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no
        // closing; `token` is written on success and closed below.
        unsafe {
            check(OpenProcessToken(
                GetCurrentProcess(),
                TOKEN_QUERY,
                &mut token,
            ))?
        };
        // A TOKEN_USER is a pointer, attributes and a SID of at most 68
        // bytes; 256 bytes is ample, and a longer answer is an error.
        let mut user = TokenUserBuffer {
            buffer: vec![0u64; 32],
        };
        let mut written = 0u32;
        // SAFETY: the buffer holds 256 bytes, as told; `token` is open
        // and closed exactly once.
        let result = unsafe {
            let result = check(GetTokenInformation(
                token,
                TokenUser,
                user.buffer.as_mut_ptr().cast(),
                (user.buffer.len() * size_of::<u64>()) as u32,
                &mut written,
            ));
            CloseHandle(token);
            result
        };
        result.map(|()| user)
    }

    fn sid(&self) -> *mut c_void {
        // SAFETY: GetTokenInformation(TokenUser) filled the buffer with a
        // TOKEN_USER whose SID pointer points into the same buffer.
        unsafe { (*self.buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }
}

/// `path` as a NUL-terminated UTF-16 string.
fn wide_path(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain(Some(0)).collect()
}

/// A Win32 BOOL result as an `io::Result`.
fn check(result: windows_sys::core::BOOL) -> io::Result<()> {
    if result == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
