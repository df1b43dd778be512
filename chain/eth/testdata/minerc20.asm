; minerc20: the smallest ERC-20 the watcher needs, hand-written EVM assembly
; (no Solidity compiler on this machine). Assembled by asm_test.go (labels
; become JUMPDESTs, "@label" pushes a label's offset as PUSH2); the result is
; checked in as minerc20.hex and the test asserts the two agree.
;
; Storage: balance of address a lives in slot a.
; Constructor (built in asm_test.go, 32 bytes): SSTORE(CALLER, 2^128-1), then
; return this runtime code.
;
; transfer(address to, uint256 amount) 0xa9059cbb: reverts when the caller's
;   balance is short; moves the amount; emits
;   Transfer(address indexed from, address indexed to, uint256 value); returns true.
; balanceOf(address) 0x70a08231: returns the balance.
; Anything else reverts.

        PUSH1 0x00
        CALLDATALOAD
        PUSH1 0xe0
        SHR                 ; selector
        DUP1
        PUSH4 0xa9059cbb
        EQ
        @transfer
        JUMPI
        DUP1
        PUSH4 0x70a08231
        EQ
        @balanceOf
        JUMPI
fail:
        PUSH1 0x00
        DUP1
        REVERT

balanceOf:                  ; [sel]
        POP
        PUSH1 0x04
        CALLDATALOAD
        SLOAD
        PUSH1 0x00
        MSTORE
        PUSH1 0x20
        PUSH1 0x00
        RETURN

transfer:                   ; [sel]
        POP
        PUSH1 0x24
        CALLDATALOAD        ; [amt]
        CALLER
        SLOAD               ; [amt, balFrom]
        DUP2
        DUP2                ; [amt, balFrom, amt, balFrom]
        LT                  ; balFrom < amt
        @fail
        JUMPI               ; [amt, balFrom]
        DUP2
        SWAP1               ; [amt, amt, balFrom]
        SUB                 ; [amt, balFrom-amt]
        CALLER
        SSTORE              ; from -= amt; [amt]
        PUSH1 0x04
        CALLDATALOAD
        PUSH20 0xffffffffffffffffffffffffffffffffffffffff
        AND                 ; [amt, to]
        DUP1
        SLOAD               ; [amt, to, balTo]
        DUP3
        ADD                 ; [amt, to, balTo+amt]
        SWAP1
        SSTORE              ; to += amt; [amt]
        PUSH1 0x00
        MSTORE              ; memory[0:32] = amt; []
        PUSH1 0x04
        CALLDATALOAD
        PUSH20 0xffffffffffffffffffffffffffffffffffffffff
        AND                 ; [to]
        CALLER              ; [to, from]
        PUSH32 0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef
        PUSH1 0x20
        PUSH1 0x00
        LOG3                ; log(memory[0:32], topic, from, to)
        PUSH1 0x01
        PUSH1 0x00
        MSTORE
        PUSH1 0x20
        PUSH1 0x00
        RETURN
