"""ELF64 facts, named as in the kernel's ``include/uapi/linux/elf.h`` (and
``elf-em.h`` for machines).

The one source of the file layouts both ELF readers decode with ``struct``:
``coreframe.object.elf`` (clang-built BPF objects) and ``coreframe.link.usdt``
(the host executables and libraries USDT probes live in). Little-endian, 64-bit
only: the only kind either reads. Kept in ``sys`` beside the other UAPI tables so
that reading a binary's notes does not import the BPF object reader.
"""

from __future__ import annotations

import struct

EM_X86_64 = 62
EM_BPF = 247

# e_type
ET_REL = 1
ET_EXEC = 2
ET_DYN = 3

# p_type, p_flags
PT_LOAD = 1
PF_X = 1

# sh_type
SHT_NOTE = 7

# Elf64_Ehdr: ident, type, machine, version, entry, phoff, shoff, flags, ehsize,
# phentsize, phnum, shentsize, shnum, shstrndx
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
# Elf64_Phdr: type, flags, offset, vaddr, paddr, filesz, memsz, align
PHDR = struct.Struct("<IIQQQQQQ")
# Elf64_Shdr: name, type, flags, addr, offset, size, link, info, addralign, entsize
SHDR = struct.Struct("<IIQQQQIIQQ")
# Elf64_Nhdr: namesz, descsz, type
NHDR = struct.Struct("<III")
