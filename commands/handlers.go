package commands

import (
	"hash/fnv"
	"sync"

	"github.com/acceptcryptohere/gateway/domain"
)

// Handlers lists every command handler; cmd/picd builds it once.
type Handlers struct {
	RegisterMerchant    RegisterMerchantHandler
	RotateKeys          RotateKeysHandler
	RotateWebhookSecret RotateWebhookSecretHandler
	UpdateAccount       UpdateAccountHandler
	SetPayoutSettings   SetPayoutSettingsHandler
	CreateInvoice       CreateInvoiceHandler
	ExpireInvoice       ExpireInvoiceHandler
	ObserveDeposit      ObserveDepositHandler
	ConfirmDeposit      ConfirmDepositHandler
	RevertDeposit       RevertDepositHandler
	FinalizeDeposit     FinalizeDepositHandler

	// Money out: payouts, their life on chain, and conversions.
	RequestPayout  RequestPayoutHandler
	SignPayout     SignPayoutHandler
	MarkPayoutSent MarkPayoutSentHandler
	ConfirmPayout  ConfirmPayoutHandler
	FailPayout     FailPayoutHandler
	CancelPayout   CancelPayoutHandler
	Convert        ConvertHandler
	Consolidate    ConsolidateHandler
	SettleDeposit  SettleDepositHandler
	NoteBalance    NoteBalanceHandler
	// RecordNetworkCost books a network fee the gateway paid (money rule 7).
	RecordNetworkCost RecordNetworkCostHandler
}

// New wires the handlers. checkAddress validates merchants' payout addresses.
func New(d Deps, addresses AddressSource, checkAddress domain.AddressCheck) Handlers {
	if d.funds == nil {
		d.funds = newFundsViews(maxFundsViews)
	}
	return Handlers{
		RegisterMerchant:    RegisterMerchantHandler{d},
		RotateKeys:          RotateKeysHandler{d},
		RotateWebhookSecret: RotateWebhookSecretHandler{d},
		UpdateAccount:       UpdateAccountHandler{d},
		SetPayoutSettings:   SetPayoutSettingsHandler{d: d, checkAddress: checkAddress},
		CreateInvoice:       CreateInvoiceHandler{d: d, addresses: addresses, reserving: &stripedLock{}},
		ExpireInvoice:       ExpireInvoiceHandler{d},
		ObserveDeposit:      ObserveDepositHandler{d},
		ConfirmDeposit:      ConfirmDepositHandler{d},
		RevertDeposit:       RevertDepositHandler{d},
		FinalizeDeposit:     FinalizeDepositHandler{d},

		RequestPayout:  RequestPayoutHandler{d: d, checkAddress: checkAddress},
		SignPayout:     SignPayoutHandler{d},
		MarkPayoutSent: MarkPayoutSentHandler{d},
		ConfirmPayout:  ConfirmPayoutHandler{d},
		FailPayout:     FailPayoutHandler{d},
		CancelPayout:   CancelPayoutHandler{d},
		Convert:        ConvertHandler{d},
		Consolidate:    ConsolidateHandler{ConvertHandler{d}},
		SettleDeposit:  SettleDepositHandler{convert: ConvertHandler{d}, payout: RequestPayoutHandler{d: d, checkAddress: checkAddress}},
		NoteBalance:    NoteBalanceHandler{d},

		RecordNetworkCost: RecordNetworkCostHandler{d},
	}
}

// stripedLock serialises work per key with a fixed number of mutexes.
type stripedLock struct{ stripes [64]sync.Mutex }

func (l *stripedLock) lock(key string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &l.stripes[h.Sum32()%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}
