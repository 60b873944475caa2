/* cgroup v2 device access: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) generated from the
 * OCI rules. The last matching rule decides; nothing matching means denied. */
#include "rt.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int bpf_sys(int cmd, union bpf_attr *a) { return (int)syscall(SYS_bpf, cmd, a, sizeof *a); }

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

struct prog {
  struct bpf_insn *v;
  size_t n, cap;
};

static void emit(struct prog *p, struct bpf_insn i) {
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 64;
    struct bpf_insn *nv = realloc(p->v, p->cap * sizeof *nv);
    if (!nv) fail("out of memory");
    p->v = nv;
  }
  p->v[p->n++] = i;
}

void bpf_devices_attach(int cgroup_fd, json_object *devs) {
  struct prog p = {0};
  /* r2 = type, r3 = access, r4 = major, r5 = minor  (struct bpf_cgroup_dev_ctx) */
  emit(&p, INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0));
  emit(&p, INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xFFFF));
  emit(&p, INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_3, BPF_REG_1, 0, 0));
  emit(&p, INSN(BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16));
  emit(&p, INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0));
  emit(&p, INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0));
  size_t n = devs ? json_object_array_length(devs) : 0;
  int unconditional = 0;
  const char *ctx = "linux.resources.devices";
  for (size_t k = n; k-- > 0;) {
    json_object *r = json_object_array_get_idx(devs, k);
    int allow = jbool(r, "allow", 0, ctx);
    const char *type = jstr(r, "type", ctx);
    if (!type || !*type) type = "a";
    const char *access = jstr(r, "access", ctx);
    if (!access || !*access) access = "rwm";
    if (strspn(access, "rwm") != strlen(access)) fail("config: linux.resources.devices: access %s is not valid", access);
    int acc = 0;
    if (strchr(access, 'm')) acc |= BPF_DEVCG_ACC_MKNOD;
    if (strchr(access, 'r')) acc |= BPF_DEVCG_ACC_READ;
    if (strchr(access, 'w')) acc |= BPF_DEVCG_ACC_WRITE;
    int64_t M = jint(r, "major", -1, ctx), m = jint(r, "minor", -1, ctx);
    int t = !strcmp(type, "c") ? BPF_DEVCG_DEV_CHAR : !strcmp(type, "b") ? BPF_DEVCG_DEV_BLOCK : !strcmp(type, "a") ? 0 : -1;
    if (t < 0) fail("config: linux.resources.devices: type %s is not valid", type);
    /* every check jumps to the end of this rule's block (the next rule) when it does not match */
    int size = (t ? 1 : 0) + (acc != 7 ? 3 : 0) + (M >= 0 ? 1 : 0) + (m >= 0 ? 1 : 0) + 2;
    size_t base = p.n;
#define TO_END ((short)(size - (int)(p.n - base) - 1))
    if (t) emit(&p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, TO_END, t));
    if (acc != 7) {
      /* allow: the request must be within the rule's access; deny: any overlap matches */
      emit(&p, INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
      if (allow) {
        emit(&p, INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, ~acc & 7));
        emit(&p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_1, 0, TO_END, 0));
      } else {
        emit(&p, INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, acc));
        emit(&p, INSN(BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_1, 0, TO_END, 0));
      }
    }
    if (M >= 0) emit(&p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, TO_END, (int)M));
    if (m >= 0) emit(&p, INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, TO_END, (int)m));
#undef TO_END
    emit(&p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, allow ? 1 : 0));
    emit(&p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    /* a rule matching everything decides alone: the verifier refuses code after it */
    if (!t && acc == 7 && M < 0 && m < 0) {
      unconditional = 1;
      break;
    }
  }
  if (!unconditional) {
    emit(&p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0));
    emit(&p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  }

  char log[4096] = "";
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insn_cnt = (unsigned)p.n;
  a.insns = (uint64_t)(uintptr_t)p.v;
  a.license = (uint64_t)(uintptr_t) "Apache";
  int prog = bpf_sys(BPF_PROG_LOAD, &a);
  if (prog < 0) {
    /* load again with the verifier's log, only to explain the failure (a log that does not
       fit would itself fail the load with ENOSPC) */
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = sizeof log;
    a.log_level = 1;
    int e = errno;
    if (bpf_sys(BPF_PROG_LOAD, &a) >= 0 || errno == ENOSPC) errno = e;
  }
  if (prog < 0) fail_errno("cgroup v2 device filter: BPF_PROG_LOAD (%.300s)", log);
  free(p.v);

  /* programs already there (an update) go once the new one is in */
  uint32_t old[64];
  memset(&a, 0, sizeof a);
  a.query.target_fd = (uint32_t)cgroup_fd;
  a.query.attach_type = BPF_CGROUP_DEVICE;
  a.query.prog_ids = (uint64_t)(uintptr_t)old;
  a.query.prog_cnt = 64;
  uint32_t nold = bpf_sys(BPF_PROG_QUERY, &a) == 0 ? a.query.prog_cnt : 0;

  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)cgroup_fd;
  a.attach_bpf_fd = (uint32_t)prog;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf_sys(BPF_PROG_ATTACH, &a) < 0) fail_errno("cgroup v2 device filter: BPF_PROG_ATTACH");
  for (uint32_t i = 0; i < nold && i < 64; i++) {
    memset(&a, 0, sizeof a);
    a.prog_id = old[i];
    int ofd = bpf_sys(BPF_PROG_GET_FD_BY_ID, &a);
    if (ofd < 0) continue;
    memset(&a, 0, sizeof a);
    a.target_fd = (uint32_t)cgroup_fd;
    a.attach_bpf_fd = (uint32_t)ofd;
    a.attach_type = BPF_CGROUP_DEVICE;
    bpf_sys(BPF_PROG_DETACH, &a);
    close(ofd);
  }
  close(prog);
}
