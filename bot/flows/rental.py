"""The rental conversation in a deal room (DESIGN §3, §5): one map from each contract event to what each of the
two people sees — the person who acts next gets the step with their buttons, the other a one-line status.

The contract machine (``market.rentals``) is the state machine; this flow keeps no state of its own. A step's
buttons are the machine's own actions that the person may take in the contract's state now (``offered``), so
every step message names its buttons by the table's edges; each new event retires the buttons of the steps
before it. Private by default: bank-link prompts, payments, refunds, payouts and reviews go to the one person
they concern, and every refusal goes back to the person who pressed or typed (the engine shows it as a toast).

It speaks through a small interface of the engine (``Voice``: say to one person or both, issue a button,
retire a topic's buttons, a person's locale), never the engine itself.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.flows import FlowRecord, Refusal
from bot.flows.listing import parse_won
from bot.texts import won
from market.billipay import BANK_REASONS
from market.errors import Conflict, MarketError, NotFound
from market.messages import fill, render
from market.rentals import EDGES, FINAL, Contract, DatesTaken
from market.rentals.contract import chip
from market.rentals.kdates import DateReading, day_label, describe, read_dates
from market.storage import media_url

if TYPE_CHECKING:
    from bot.buttons import Buttons
    from bot.flows import FlowStore
    from market.chat import Sent
    from market.service import Market

PROMPT = "prompt"
log = logging.getLogger("billi.bot")
ANNOUNCE_LOCK_S = 60  # (an announcement's lock lapses after this, its holder gone)
ACTION = "rental"  # every rental button's token action; its payload names what it does ("do")
BUTTON_TTL_S = 90 * 24 * 3600
BANK_REFUSALS = frozenset(BANK_REASONS.values()) | {"pay.declined"}

# The names of the two people of the contract being announced, read once per announcement (this task's own).
_NAMES: ContextVar[dict[int, str] | None] = ContextVar("billi_rental_names", default=None)


# What announcing an event reads, in one query (%s: the event, the contract): whether the event was announced, the
# contract, both people's nicknames and languages (``o_``: the owner, ``b_``: the borrower) and the item's title
# and first photo.
_PEOPLE = ("o.nickname AS o_nickname, o.locale AS o_locale, b.nickname AS b_nickname, b.locale AS b_locale, i.title,"
           " (SELECT p.thumb_key FROM item_photos p WHERE p.item_id = i.id ORDER BY p.position LIMIT 1) AS thumb")
_ANNOUNCING = (
    "SELECT c.*, (SELECT e.announced_at FROM contract_events e WHERE e.id = %s) AS announced_at, "
    + _PEOPLE + " FROM contracts c LEFT JOIN users o ON o.id = c.owner_id LEFT JOIN users b ON b.id = c.borrower_id"
    " LEFT JOIN items i ON i.id = c.item_id WHERE c.id = %s")
# The same without the contract, which the caller has (%s: the event, the borrower, the item, the owner).
_ANNOUNCING_NEW = (
    f"SELECT (SELECT e.announced_at FROM contract_events e WHERE e.id = %s) AS announced_at, {_PEOPLE}"
    " FROM users o LEFT JOIN users b ON b.id = %s LEFT JOIN items i ON i.id = %s WHERE o.id = %s")


class Voice(Protocol):
    """What the rental flow needs from the bot engine."""

    market: Market
    flows: FlowStore

    buttons: Buttons

    async def locale(self, user_id: int) -> str: ...

    async def say(self, room_id: int, text: str, *, audience: int | None = None, topic: str | None = None,
                  client_msg_id: str | None = None, **body: Any) -> Sent: ...

    async def button(self, user_id: int, room_id: int, label: str, action: str, payload: dict[str, Any], *,
                     single_use: bool = True, form: str | None = None, ttl_s: int | None = None) -> dict[str, Any]: ...

    async def say_together(self, room_id: int, lines: list[dict[str, Any]]) -> list[Sent]: ...

    async def give_back(self, key: str, token: str) -> None: ...

    async def retire(self, room_id: int, topic: str, below: int | None = None) -> None: ...

    async def announce_room(self, room_id: int, user_ids: list[int]) -> None: ...

    async def deal_changed(self, room_id: int) -> None: ...


T: dict[str, tuple[str, str]] = {
    "ask_dates": ("언제 빌릴까요? 날짜를 알려 주세요. 예) 12/24~12/26, 내일부터 3일, 이번 주말",
                  "When? e.g. 12/24~12/26, 내일부터 3일 (from tomorrow, 3 days), 이번 주말 (this weekend)"),
    "bad_dates": ("날짜를 알아듣지 못했어요. 예) /대여 {item} 12/24~12/26, /대여 {item} 내일부터 3일",
                  "I could not read the dates. e.g. /rent {item} 12/24~12/26"),
    "confirm_dates": ("제가 이해한 날짜는 {reading}이에요. {why} 이 날짜로 요청할까요?",
                      "I read {reading}. {why} Request these dates?"),
    "dates.single_day": ("하루만 빌리시는 거죠?", "Just one day?"),
    "dates.next_year": ("올해 날짜는 이미 지나서 내년으로 읽었어요.", "That date has passed this year, so I read next year."),
    "dates.next_month": ("이번 달 그날은 지나서 다음 달로 읽었어요.", "That day has passed this month, so I read next month."),
    "dates.weekend_today": ("오늘이 일요일이라 오늘 하루로 읽었어요.", "Today is Sunday, so I read today only."),
    "yes_dates": ("네, 이 날짜로", "Yes, these dates"),
    "taken": ("그 날짜에는 이미 예약이 있어요. 가까운 빈 날짜예요.", "Those dates are taken. The nearest free dates:"),
    "taken_none": ("그 날짜에는 이미 예약이 있고, 가까운 빈 날짜도 없어요.", "Those dates are taken and nothing near is free."),
    "need_item": ("어떤 물건을 빌릴까요? /대여 <번호> <날짜>처럼 물건 번호를 알려 주세요.",
                  "Which item? e.g. /rent <number> <dates>"),
    "request_sent": ("{title} 대여 요청을 거래방에 보냈어요.", "Your request for {title} is in its deal room."),
    "no_contract": ("이 방에는 진행 중인 대여가 없어요.", "There is no rental in progress in this room."),
    "nothing_to_pay": ("결제할 대여가 없어요. 주인이 요청을 수락하면 결제할 수 있어요.",
                       "Nothing to pay yet; you can pay once the owner accepts."),
    "link_first": ("빌리페이로 결제하려면 먼저 은행 계좌를 연결해 주세요. 연결이 끝나면 이 방에서 바로 결제할 수 있어요.",
                   "Link a bank account first; once it is linked you can pay right here."),
    "link_button": ("계좌 연결하기", "Link a bank account"),
    "linked": ("{bank} {account} 계좌가 빌리페이에 연결됐어요.", "{bank} {account} is now linked to BilliPay."),
    "confirm_pay": ("새로 연결한 계좌로 처음 결제해요. 은행, 계좌, 예금주와 금액을 확인하고 결제를 눌러 주세요.",
                    "First payment with a newly linked account: check the bank, account, holder and amount, then "
                    "press Pay."),
    "confirm_pay_changed": ("연결된 계좌가 바뀌었어요. 바뀐 계좌를 확인하고 결제를 눌러 주세요.",
                            "The linked account has changed. Check it and press Pay."),
    "holder_differs": ("예금주({holder})가 은행에서 확인한 회원님 이름({person})과 달라요. 회원님이 쓸 수 있는 계좌가 "
                       "맞는지 확인해 주세요. 아니라면 결제하지 말고 내정보에서 계좌 연결을 해제해 주세요.",
                       "The account holder ({holder}) is not the name your bank gave for you ({person}). Make sure "
                       "you may use this account; if not, do not pay and unlink it on My page."),
    "c_confirm": ("빌리페이 결제 확인", "BilliPay payment check"),
    "f_bank": ("은행", "Bank"),
    "f_account": ("계좌", "Account"),
    "f_holder": ("예금주", "Holder"),
    "f_holder_differs": ("{holder} (회원님 이름과 달라요)", "{holder} (not your name)"),
    "b_confirm_pay": ("결제", "Pay"),
    "confirm_ext_account": ("주인이 연장을 승인했어요. 연장 대여료를 내기 전에 새로 연결한 계좌를 확인해 주세요.",
                            "The owner approved the extension. Before its rent is charged, check your newly linked "
                            "account."),
    "b_account_ok": ("이 계좌가 맞아요", "This is my account"),
    "wait_account": ("빌리는 분이 새로 연결한 계좌를 확인하면 알려 드릴게요.",
                     "You will be told once the borrower has checked their newly linked account."),
    "account_checked": ("계좌를 확인했어요. 주인의 승인을 기다리고 있어요.",
                        "Account checked. Waiting for the owner's approval."),
    "approve_again": ("빌리는 분이 계좌를 확인했어요. 연장을 승인할까요?",
                      "The borrower has checked their account. Approve the extension?"),
    "link_payout": ("{name}님, 정산금을 받으려면 빌리페이 계좌를 연결해 주세요.",
                    "{name}, link a bank account to receive your payout."),
    "request": ("{name}님이 대여를 요청했어요. {deadline}까지 수락하거나 거절해 주세요.",
                "{name} asks to rent it. Please accept or decline by {deadline}."),
    "request_waiting": ("대여를 요청했어요. 주인의 수락을 기다리고 있어요 ({deadline}까지).",
                        "Request sent. Waiting for the owner to accept (until {deadline})."),
    "accepted_other": ("수락했어요. 빌리는 분이 {deadline}까지 결제하면 예약이 확정돼요.",
                       "Accepted. The booking is confirmed once the borrower pays (by {deadline})."),
    "declined_other": ("요청을 거절했어요.", "You declined the request."),
    "accepted": ("주인이 수락했어요. {deadline}까지 결제하면 예약이 확정돼요.",
                 "The owner accepted. Pay by {deadline} to confirm."),
    "declined": ("주인이 이번 요청은 거절했어요. 다른 날짜로 다시 요청할 수 있어요.",
                 "The owner declined this request. You can ask for other dates."),
    "expired_request": ("주인이 기한 안에 답하지 않아 요청이 만료됐어요.", "The owner did not answer in time; the request expired."),
    "expired_payment": ("결제 기한이 지나 예약이 풀렸어요.", "The payment window closed; the dates were released."),
    "cancelled": ("대여가 취소됐어요.", "The rental was cancelled."),
    "no_show": ("시작일이 지나도록 두 분 모두 전달을 확인하지 않아 대여를 취소했어요. 빌리는 분께 {refund}원을 모두 "
                "돌려드려요.", "Nobody confirmed the hand-over after the start day, so the rental is cancelled and "
                "₩{refund} goes back to the borrower."),
    "no_show_owner": ("시작일이 지나도록 두 분 모두 전달을 확인하지 않아 대여를 취소했어요. 빌리는 분께 낸 돈을 모두 "
                      "돌려드려요.", "Nobody confirmed the hand-over after the start day, so the rental is "
                      "cancelled and the borrower refunded in full."),
    "handover_resolved_no_owner": ("운영자가 확인했어요: 물건이 전달되지 않은 것으로 보고 대여를 취소했어요. 빌리는 분께 "
                                   "모두 돌려드려요. {note}", "An operator decided the item was not handed over; "
                                   "the rental is cancelled and the borrower refunded. {note}"),
    "disputed_unanswered": ("빌리는 분이 {claim_h}시간 동안 청구에 답하지 않아 운영자가 확인해요. 결정이 나면 알려 드릴게요.",
                            "The borrower did not answer the claim within {claim_h} hours, so an operator will "
                            "decide. You will be told."),
    "cancelled_refund": ("대여가 취소됐어요. 환불 {refund}원{extra}을 보낼게요.",
                         "The rental was cancelled. Refund: ₩{refund}{extra}."),
    "late_cancel_extra": (" (시작 {free_h}시간 전이 지나 대여료의 {percent}% {owner}원은 주인에게, 수수료 {fee}원은 환불되지 않아요)",
                          " (within {free_h} h of the start: {percent}% of the rent, ₩{owner}, goes to the owner; the fee"
                          " ₩{fee} is kept)"),
    "cancelled_owner_part": ("대여가 취소됐어요. 시작 {free_h}시간 전이 지나 취소돼 대여료의 {percent}% {owner}원을 보내 "
                             "드려요.", "The rental was cancelled within {free_h} h of the start: {percent}% of the "
                             "rent, ₩{owner}, is yours."),
    "cancel_confirm": ("정말 취소할까요? {terms}", "Cancel this rental? {terms}"),
    "cancel_terms_changed": ("그사이 취소 조건이 바뀌었어요. 새 안내를 확인하고 다시 눌러 주세요.",
                             "The cancellation terms changed meanwhile; check the new ones and press again."),
    "cancel_free": ("지금 취소하면 낸 돈은 모두 돌려받아요.", "Everything paid will be refunded."),
    "cancel_late": ("지금 취소하면 {refund}원을 돌려받고, 대여료의 {percent}% {owner}원은 주인에게 가요.",
                    "You get ₩{refund} back; {percent}% of the rent, ₩{owner}, goes to the owner."),
    "cancel_unpaid": ("아직 결제 전이라 바로 취소돼요.", "Nothing has been paid; it is cancelled at once."),
    "payment_failed": ("결제가 되지 않았어요. {reason}", "The payment did not go through. {reason}"),
    "payment_failed_other": ("빌리는 분의 결제가 아직 되지 않았어요. 결제되면 알려 드릴게요.",
                             "The borrower's payment has not gone through yet; you will be told when it does."),
    "extension_failed_other": ("연장 결제가 되지 않아 연장하지 못했어요. 빌리는 분께 이유를 알려 드렸어요.",
                               "The extension payment failed, so the rental was not extended; the borrower was told "
                               "why."),
    "paid": ("결제가 끝났어요 ({amount}원). 예약이 확정됐어요. 물건을 받으면 수령 완료를 눌러 주세요. 물건 상태 사진을 이 방에 "
             "올리면 시간과 함께 증빙으로 남아요.",
             "Paid (₩{amount}); the booking is confirmed. Press Received when you get the item. Condition photos "
             "posted here are kept as timestamped evidence."),
    "paid_other": ("{name}님이 결제했어요. 예약이 확정됐어요. 물건을 건네면 전달 완료를 눌러 주세요. 물건 상태 사진을 이 방에 "
                   "올리면 시간과 함께 증빙으로 남아요.",
                   "{name} paid; the booking is confirmed. Press Handed over when you give the item. Condition "
                   "photos posted here are kept as timestamped evidence."),
    "handed": ("주인이 물건을 전달했어요. 받으셨으면 수령 완료를 눌러 주세요.", "The owner handed the item over. Confirm receipt."),
    "handed_self": ("전달 완료를 알렸어요. 빌리는 분의 수령 확인을 기다리고 있어요.",
                    "Hand-over noted. Waiting for the borrower to confirm receipt."),
    "received": ("빌리는 분이 물건을 받았다고 했어요. 전달 완료를 눌러 주세요.",
                 "The borrower confirmed receipt. Please confirm the hand-over."),
    "received_self": ("수령 완료를 알렸어요. 주인의 전달 확인을 기다리고 있어요.",
                      "Receipt noted. Waiting for the owner to confirm the hand-over."),
    "in_use": ("대여가 시작됐어요. 반납일은 {end}이에요.", "The rental has started. Return by {end}."),
    "starts_soon": ("{start}에 대여가 시작돼요. 만날 시간과 장소를 정해 주세요.",
                    "The rental starts {start}: agree on a time and place to meet."),
    "starts_tomorrow": ("내일 대여가 시작돼요 ({start}). 만날 시간과 장소를 정해 주세요.",
                        "The rental starts tomorrow ({start}). Agree where and when to meet."),
    "starts_tomorrow_agreed": ("내일 대여가 시작돼요 ({start}). 약속: {when}, {place}", "The rental starts tomorrow "
                               "({start}). Meeting: {when}, {place}"),
    "appt_proposed": ("{who}님이 약속을 제안했어요: {when}, {place}. 괜찮으면 이 약속으로 할게요를, 아니면 다른 시간을 제안해 "
                      "주세요.", "{who} proposes to meet: {when}, {place}. Agree, or propose another time."),
    "appt_proposed_self": ("약속을 제안했어요: {when}, {place}. 상대의 답을 기다리고 있어요.",
                           "You proposed: {when}, {place}. Waiting for the answer."),
    "appt_agreed": ("약속이 정해졌어요: {when}, {place}. 만나서 물건을 주고받을 때 각자 버튼을 눌러 주세요.",
                    "Agreed: {when}, {place}. Each of you, press your button at the hand-over."),
    "appt_soon": ("곧 약속 시간이에요: {when}, {place}.", "Your meeting is soon: {when}, {place}."),
    "appt_sent": ("약속을 제안했어요.", "Proposal sent."),
    "b_appt": ("약속 잡기", "Set a meeting"), "b_appt_other": ("다른 시간 제안", "Propose another time"),
    "b_appt_change": ("약속 바꾸기", "Change the meeting"), "b_appt_ok": ("이 약속으로 할게요", "Agree"),
    "due_tomorrow": ("내일이 반납일이에요 ({end}). 연장이 필요하면 연장 요청을 눌러 주세요.",
                     "The item is due back tomorrow ({end}). Need longer? Request an extension."),
    "due_tomorrow_owner": ("내일이 반납일이에요 ({end}).", "The item is due back tomorrow ({end})."),
    "due_today": ("오늘이 반납일이에요 ({end}).", "The item is due back today ({end})."),
    "overdue": ("반납일이 지났어요. 하루 늦을 때마다 연체료 {daily}원이 보증금에서 빠져요.",
                "The return date has passed. A late fee of ₩{daily} per day comes out of the deposit."),
    "overdue_owner": ("반납일이 지났어요. 늦은 날마다 연체료 {daily}원이 보증금에서 정산돼요. 물건을 받으면 반납 받음을 눌러 "
                      "주세요.", "The return date has passed. ₩{daily} per late day comes out of the deposit. "
                      "Press Got it back when you have it."),
    "still_overdue": ("반납이 {days}일 늦었어요. 지금까지 연체료는 {fee}원이에요.",
                      "The item is {days} day(s) late; late fees so far: ₩{fee}."),
    "ask_extension": ("새 반납일을 알려 주세요. 예) 12/30, 다음주 금요일", "New return date? e.g. 12/30"),
    "extension_requested": ("빌리는 분이 {end}까지 연장을 요청했어요 ({days}일, 추가 {amount}원). 승인하거나 거절해 주세요.",
                            "The borrower asks to extend to {end} ({days} more days, ₩{amount}). Approve or decline."),
    "extension_requested_self": ("{end}까지 연장을 요청했어요 (추가 {amount}원). 주인의 승인을 기다리고 있어요.",
                                 "You asked to extend to {end} (₩{amount} more). Waiting for the owner."),
    "extended_owner": ("연장됐어요. 새 반납일은 {end}이에요.", "Extended: the new return date is {end}."),
    "extension_declined_self": ("연장을 거절했어요. 반납일은 그대로 {end}이에요.",
                                "You declined the extension; the return date stays {end}."),
    "extended": ("연장됐어요. 새 반납일은 {end}이고, 추가로 {amount}원을 결제했어요.",
                 "Extended to {end}; ₩{amount} was charged."),
    "extension_declined": ("주인이 연장을 거절했어요. 원래 반납일에 돌려주세요.", "The owner declined the extension."),
    "extension_failed": ("연장 결제가 되지 않아 연장하지 못했어요. {reason}", "The extension payment failed. {reason}"),
    "returned": ("반납됐어요{late}. {claim_h}시간 안에 상태를 확인해 주세요. 확인이 없으면 보증금이 자동으로 환불돼요. "
                 "파손이 있으면 사진을 이 방에 올리고 파손 신고를 눌러 주세요.",
                 "Returned{late}. Check the item within {claim_h} hours, or the deposit is refunded automatically. "
                 "For damage, post photos here and press Report damage."),
    "returned_borrower": ("반납이 확인됐어요{late}. 주인이 {claim_h}시간 안에 상태를 확인하고, 따로 청구가 없으면 보증금을 "
                          "돌려드려요.", "The return is confirmed{late}. The owner checks the item within {claim_h} "
                          "hours; without a claim your deposit comes back."),
    "late_note": (" ({days}일 늦어 연체료 {fee}원)", " ({days} day(s) late: ₩{fee} late fee)"),
    "ask_claim_amount": ("청구할 금액을 알려 주세요 (최대 {max}원).", "How much do you claim? (at most ₩{max})"),
    "ask_claim_note": ("어떤 손상인지 적어 주세요. 사진은 이 방에 올리면 함께 제출돼요.",
                       "Describe the damage. Photos posted here are attached."),
    "bad_amount": ("금액을 숫자로 알려 주세요. 1원부터 {max}원까지예요.", "Give an amount from ₩1 to ₩{max}."),
    "claimed_self": ("파손 신고를 보냈어요 ({amount}원). 빌리는 분의 답을 기다리고 있어요. {claim_h}시간 안에 답이 없으면 "
                     "운영자가 확인해요.", "Claim sent (₩{amount}). Waiting for the borrower; without an answer in "
                     "{claim_h} hours an operator decides."),
    "claimed_lost_self": ("분실로 신고하고 보증금 {amount}원을 청구했어요. 빌리는 분의 답을 기다리고 있어요.",
                          "Reported lost; the deposit, ₩{amount}, is claimed. Waiting for the borrower."),
    "claimed_lost_auto_owner": ("반납일이 {days}일 지나도록 반납 소식이 없어 분실로 보고 보증금 {amount}원 전액을 청구했어요. "
                                "빌리는 분의 답을 기다리고 있어요.", "{days} days overdue with no return: treated as "
                                "lost, the whole deposit (₩{amount}) is claimed. Waiting for the borrower."),
    "claimed": ("주인이 파손을 신고했어요: {amount}원. 내용: {note} (사진 {photos}장). 수락하거나 이의를 제기해 주세요.",
                "The owner reports damage: ₩{amount}. Note: {note} ({photos} photo(s)). Accept or dispute."),
    "payout_held": ("{amount}원을 보내려 했지만 은행에서 세 번 거절됐어요({reason}). 운영자가 확인하고 있어요 · 보통 2일 "
                    "안에. 계좌를 다시 연결하면 더 빨라요.", "₩{amount} could not be sent: the bank refused it three "
                    "times ({reason}). An operator is looking into it (usually within 2 days); relinking your "
                    "account speeds it up."),
    "payout_held_other": ("정산 일부를 운영자가 확인하고 있어요 · 보통 2일 안에.",
                          "An operator is looking into part of the settlement (usually within 2 days)."),
    "disputed": ("이의가 접수됐어요. 운영자가 사진과 기록을 확인한 뒤 결정을 알려 드릴게요.",
                 "Disputed. An operator will review the photos and history and decide."),
    "lost_confirm": ("분실로 신고하면 보증금 전액({deposit}원)을 청구해요(연체료는 따로 받지 않아요). 빌리는 분이 수락하거나 "
                     "이의를 제기할 수 있고, 대여료는 바로 정산돼요. 계속할까요?",
                     "Reporting a loss claims the whole deposit (₩{deposit}; no late fees on top); the borrower "
                     "accepts or disputes it, and the rent is paid to you now. Continue?"),
    "claimed_lost": ("주인이 물건을 분실로 신고하고 보증금 {amount}원 전액을 청구했어요{late}. 수락하거나 이의를 제기해 주세요. "
                     "{claim_h}시간 안에 답이 없으면 운영자가 확인해요.",
                     "The owner reports the item lost and claims the whole deposit, ₩{amount}{late}. Accept or dispute; "
                     "without an answer in {claim_h} hours an operator decides."),
    "claimed_lost_auto": ("반납일이 {days}일 지나도록 반납 소식이 없어 분실로 보고 보증금 {amount}원 전액을 청구했어요{late}. 물건을 "
                          "돌려줬다면 이의 제기를 눌러 주세요. {claim_h}시간 안에 답이 없으면 운영자가 확인해요.",
                          "{days} days overdue with no return: treated as lost, the whole deposit (₩{amount}) is claimed"
                          "{late}. If you gave it back, dispute. Without an answer in {claim_h} hours an operator decides."),
    "rent_paid_now": ("대여료 {amount}원은 다툼이 없어 주인에게 먼저 보내요.",
                      "The undisputed rent, ₩{amount}, goes to the owner now."),
    "return_declared": ("빌리는 분이 물건을 돌려줬다고 알렸어요{late}. 받았으면 반납 받음을, 아직 못 받았으면 아직 못 "
                        "받았어요를 눌러 주세요. {confirm_h}시간 안에 답이 없으면 받은 것으로 처리돼요.",
                        "The borrower says the item is back{late}. Owner: press Got it back, or Not yet if you do not "
                        "have it. Without an answer in {confirm_h} hours it counts as returned."),
    "return_declared_self": ("반납했다고 알렸어요{late}. 주인의 확인을 기다리고 있어요. {confirm_h}시간 안에 답이 없으면 "
                             "반납된 것으로 처리돼요.", "Return noted{late}. Waiting for the owner; without an answer "
                             "in {confirm_h} hours it counts as returned."),
    "return_objected_self": ("아직 못 받았다고 알렸어요. 대여는 계속돼요.", "Noted: not back yet. The rental goes on."),
    "return_objected": ("주인이 아직 물건을 받지 못했다고 했어요. 대여는 계속되고 반납일이 지났다면 연체료도 계속 붙어요. "
                        "물건을 돌려준 뒤 반납 완료를 다시 눌러 주세요.",
                        "The owner says the item is not back yet. The rental goes on (late fees too, if overdue). "
                        "Press Returned again once you have given it back."),
    "returned_auto": ("주인이 {confirm_h}시간 동안 답하지 않아 반납된 것으로 처리했어요.",
                      "The owner did not answer for {confirm_h} hours, so the item counts as returned."),
    "handover_objected_owner": ("주인은 아직 물건을 전달하지 않았다고 하고, 빌리는 분은 받았다고 했어요.",
                                "The owner says the item was not handed over; the borrower says it was received."),
    "handover_objected_borrower": ("빌리는 분은 아직 물건을 받지 못했다고 하고, 주인은 전달했다고 했어요.",
                                   "The borrower says the item was not received; the owner says it was handed over."),
    "operator_checking": ("운영자가 확인하고 있어요 · 보통 2일 안에. 이 방에 상황 설명과 사진을 남겨 주시면 함께 봐요.",
                          "An operator is looking into it (usually within 2 days). Add a statement and photos here "
                          "and they will be seen."),
    "handover_resolved_yes": ("운영자가 확인했어요: 물건이 전달된 것으로 보고 대여를 시작해요. 반납일은 {end}이에요. {note}",
                              "An operator decided the item was handed over; the rental runs until {end}. {note}"),
    "handover_resolved_not_yet": ("운영자가 확인했어요: 아직 주고받지 않은 것으로 보고 대여를 이어가요. 만나서 주고받을 때 각자 "
                                  "버튼을 다시 눌러 주세요. {note}", "An operator decided the hand-over has not happened "
                                  "yet; press your buttons again when you meet. {note}"),
    "handover_resolved_no": ("운영자가 확인했어요: 물건이 전달되지 않은 것으로 보고 대여를 취소했어요. {refund}원을 모두 "
                             "돌려드려요. {note}", "An operator decided the item was not handed over; the rental is "
                             "cancelled and ₩{refund} refunded. {note}"),
    "late_payment_refunded_started": ("결제가 대여 시작일이 지난 뒤에야 확인돼 예약이 성립하지 않았어요. {amount}원을 모두 "
                                      "돌려보낼게요.", "The payment was confirmed only after the start date, so the "
                                      "booking did not stand; ₩{amount} will be refunded."),
    "late_payment_refunded_taken": ("결제가 늦게 확인되는 사이 그 날짜에 다른 예약이 생겨 {amount}원을 모두 돌려보낼게요.",
                                    "The payment was confirmed late and the dates were taken meanwhile; ₩{amount} "
                                    "will be refunded."),
    "late_fee_removed": (" 연장한 날짜만큼 연체료 {fee}원이 빠졌어요.", " ₩{fee} of late fees for the days it covers was taken off."),
    "settled_owner": ("정산이 끝났어요. {owner}원{owner_parts}을 보내 드려요.", "Settled: ₩{owner}{owner_parts} is on its way to you."),
    "settled_borrower": ("정산이 끝났어요. 보증금 {borrower}원을 돌려드려요.", "Settled: your deposit, ₩{borrower}, is on its way back."),
    "settled_borrower_none": ("정산이 끝났어요. 돌려받을 보증금은 없어요.", "Settled: no deposit comes back."),
    "settled_parts": (" (대여료 {rent}원{late}{claim})", " (rent ₩{rent}{late}{claim})"),
    "settled_late": (" + 연체료 {fee}원", " + late fee ₩{fee}"),
    "settled_claim": (" + 배상 {claim}원", " + damages ₩{claim}"),
    "settled_auto": ("{claim_h}시간 동안 파손 신고가 없어 보증금을 환불해요.",
                     "No claim within {claim_h} hours; the deposit is refunded."),
    "lost": ("주인이 분실을 신고했어요. 보증금 전액이 주인에게 가요.", "The owner reported the item lost; the deposit goes to the owner."),
    "resolved": ("운영자가 결정했어요: 주인에게 배상 {amount}원. {note}", "An operator decided: ₩{amount} to the owner. {note}"),
    "claim_accepted": ("빌리는 분이 청구를 수락했어요.", "The borrower accepted the claim."),
    "paid_out_owner": ("계좌로 {amount}원을 보냈어요.", "₩{amount} was sent to your account."),
    "paid_out_borrower": ("계좌로 {amount}원을 돌려보냈어요.", "₩{amount} was sent back to your account."),
    "late_payment_refunded_other": ("결제가 늦게 확인돼 예약이 성립하지 않았어요. 빌리는 분께 모두 돌려드려요.",
                                    "The payment was confirmed too late, so the booking did not stand; the borrower "
                                    "is refunded."),
    "late_payment_refunded": ("결제가 늦게 확인됐지만 이미 예약이 끝나 {amount}원을 모두 돌려보낼게요.",
                              "The payment arrived after the booking ended; ₩{amount} will be refunded."),
    "review_ask_borrower": ("{name}님, 주인 {other}님과의 거래는 어땠나요? 후기는 나에게만 보이는 창에서 쓰고, 두 분이 모두 "
                            "쓰면 (또는 7일 뒤) 공개돼요.", "{name}, how was renting from {other}? You write it "
                            "privately; reviews open when both of you have written (or after 7 days)."),
    "review_ask_owner": ("{name}님, 빌린 분 {other}님은 어땠나요? 후기는 나에게만 보이는 창에서 쓰고, 두 분이 모두 쓰면 "
                         "(또는 7일 뒤) 공개돼요.", "{name}, how was {other} as a borrower? You write it privately; "
                         "reviews open when both of you have written (or after 7 days)."),
    "review_ask_item": ("물건 자체는 어땠나요?", "And the item itself?"),
    "review_saved": ("후기를 남겼어요. 고마워요!", "Review saved. Thank you!"),
    "b_review": ("후기 쓰기", "Write a review"),
    "bad_review": ("별점은 1개부터 5개까지 골라 주세요.", "Pick from 1 to 5 stars."),
    "not_your_turn": ("지금은 상대방이 할 차례예요.", "It is the other person's turn."),
    # buttons and fields
    "b_request": ("대여 요청", "Request"), "b_accept": ("수락", "Accept"), "b_decline": ("거절", "Decline"),
    "b_cancel": ("요청 취소", "Cancel request"), "b_cancel_paid": ("예약 취소", "Cancel booking"),
    "b_cancel_yes": ("취소하기", "Cancel it"),
    "b_pay": ("빌리페이로 결제 ({amount}원)", "Pay with BilliPay (₩{amount})"),
    "b_handed": ("전달 완료", "Handed over"), "b_received": ("수령 완료", "Received"),
    "b_returned": ("반납 완료", "Returned"), "b_got_back": ("반납 받음", "Got it back"),
    "b_extend": ("연장 요청", "Extend"), "b_lost": ("분실", "Lost"), "b_lost_yes": ("분실로 신고", "Report lost"),
    "b_not_back": ("아직 못 받았어요", "Not yet"), "b_not_received": ("아직 못 받았어요", "Not received yet"),
    "b_not_handed": ("아직 전달 안 했어요", "Not handed over yet"),
    "b_ok": ("정상 반납", "All good"), "b_damage": ("파손 신고", "Report damage"),
    "b_ext_ok": ("연장 승인", "Approve"), "b_ext_no": ("연장 거절", "Decline"),
    "b_claim_ok": ("청구 수락", "Accept claim"), "b_dispute": ("이의 제기", "Dispute"),
    "f_dates": ("기간", "Dates"), "f_days": ("일수", "Days"), "f_rent": ("대여료", "Rent"), "f_deposit": ("보증금", "Deposit"),
    "f_fee": ("수수료", "Fee"), "f_total": ("결제 금액", "Total"), "f_state": ("상태", "Status"),
    "f_owner_gets": ("받을 대여료", "Your rent"),
}
# The order a person's step buttons come in (the machine's edges a person can take; cancel lives in the deal's
# header, not in the steps).
STEP_ORDER = ("accept", "decline", "pay", "agree_appointment", "propose_appointment", "hand_over", "object_handover",
              "approve_extension", "decline_extension",
              "confirm_return", "object_return", "declare_return", "request_extension", "report_lost", "confirm_ok",
              "claim", "accept_claim", "dispute")
LABELS: dict[str, dict[str, str]] = {  # action → role → text key (of T)
    "accept": {"owner": "b_accept"}, "decline": {"owner": "b_decline"}, "pay": {"borrower": "b_pay"},
    "agree_appointment": {"owner": "b_appt_ok", "borrower": "b_appt_ok"},
    "propose_appointment": {"owner": "b_appt", "borrower": "b_appt"},
    "hand_over": {"owner": "b_handed", "borrower": "b_received"},
    "object_handover": {"owner": "b_not_handed", "borrower": "b_not_received"},
    "approve_extension": {"owner": "b_ext_ok"}, "decline_extension": {"owner": "b_ext_no"},
    "confirm_return": {"owner": "b_got_back"}, "object_return": {"owner": "b_not_back"},
    "declare_return": {"borrower": "b_returned"}, "request_extension": {"borrower": "b_extend"},
    "report_lost": {"owner": "b_lost"}, "confirm_ok": {"owner": "b_ok"}, "claim": {"owner": "b_damage"},
    "accept_claim": {"borrower": "b_claim_ok"}, "dispute": {"borrower": "b_dispute"},
}
assert set(STEP_ORDER) == set(LABELS) and set(LABELS) <= set(EDGES)

# contract event → (the owner's line, the borrower's line); the same key twice: both see the same words.
LINES: dict[str, tuple[str, str]] = {
    "requested": ("request", "request_waiting"), "accepted": ("accepted_other", "accepted"),
    "declined": ("declined_other", "declined"), "paid": ("paid_other", "paid"),
    "handed": ("handed_self", "handed"), "received": ("received", "received_self"),
    "return_declared": ("return_declared", "return_declared_self"),
    "return_objected": ("return_objected_self", "return_objected"), "in_use": ("in_use", "in_use"),
    "starts_tomorrow": ("starts_tomorrow", "starts_tomorrow"), "due_tomorrow": ("due_tomorrow_owner", "due_tomorrow"),
    "due_today": ("due_today", "due_today"), "overdue": ("overdue_owner", "overdue"),
    "still_overdue": ("still_overdue", "still_overdue"),
    "extension_requested": ("extension_requested", "extension_requested_self"),
    "extended": ("extended_owner", "extended"), "extension_declined": ("extension_declined_self", "extension_declined"),
    "extension_failed": ("extension_failed_other", "extension_failed"),
    "payment_failed": ("payment_failed_other", "payment_failed"),
    "returned": ("returned", "returned_borrower"), "no_show": ("no_show_owner", "no_show"),
    "appointment_agreed": ("appt_agreed", "appt_agreed"), "appointment_soon": ("appt_soon", "appt_soon"),
}

# Every event kind the flow has words for: LINES, and those whose lines depend on the event (``_lines``) or that
# go to one person (money) or end the deal (settlement).
HANDLED = frozenset(LINES) | {"expired", "cancelled", "handover_objected", "handover_resolved", "claimed", "disputed",
                              "appointment_proposed", "paid_out", "payout_held", "settled", "claim_accepted",
                              "resolved", "lost", "late_payment_refunded"}


def t(key: str, locale: str = "ko", **params: Any) -> str:
    ko, en = T[key]
    return fill(en if locale == "en" else ko, locale, params)


def topic(cid: int) -> str:
    """The topic of a contract's step buttons (each new step retires the ones before it)."""
    return f"c{cid}"


def offered(c: Contract, role: str) -> list[str]:
    """The machine's actions ``role`` can take on ``c`` now, as step buttons (the guards still decide)."""
    out = []
    for action in STEP_ORDER:
        edge = EDGES[action]
        if role not in edge.roles or c.state not in edge.sources:
            continue
        mine, other = ((c.owner_handed_at, c.borrower_got_at) if role == "owner"
                       else (c.borrower_got_at, c.owner_handed_at))
        declared, asked = c.return_declared_at is not None, c.ext_end_date is not None
        if action == "hand_over" and mine is not None:
            continue
        me = c.owner_id if role == "owner" else c.borrower_id
        if action == "agree_appointment" and (c.appt_proposed_by is None or c.appt_proposed_by == me):
            continue
        if action == "propose_appointment" and (c.owner_handed_at is not None or c.borrower_got_at is not None):
            continue
        if action == "object_handover" and (mine is not None or other is None):
            continue
        if action in ("declare_return", "report_lost") and declared:
            continue
        if action == "request_extension" and (declared or asked):
            continue
        if action == "object_return" and not declared:
            continue
        if action in ("approve_extension", "decline_extension") and not asked:
            continue
        out.append(action)
    return out


class RentalFlow:
    def __init__(self, voice: Voice) -> None:
        self.voice = voice
        self.market = voice.market
        self.rentals = voice.market.rentals

    async def _button(self, user_id: int, room_id: int, label: str, payload: dict[str, Any], *,
                      form: str | None = None) -> dict[str, Any]:
        """A rental button. Not single-use: the machine's guards make a second press a clear refusal, and a press
        that fails (a busy room, the bank away) can simply be pressed again. It lives as long as a rental can
        (a step issued the day before the start is pressed days later) and dies when a later step retires it."""
        return await self.voice.button(user_id, room_id, label, ACTION, payload, form=form, single_use=False,
                                       ttl_s=BUTTON_TTL_S)

    def _rules(self) -> dict[str, int]:
        """The configured hours and percentages the texts name (never written into the texts themselves)."""
        r = self.rentals.rules
        return {"free_h": r.free_cancel_s // 3600, "percent": r.late_cancel_percent, "claim_h": r.claim_window_s // 3600,
                "confirm_h": r.return_confirm_s // 3600}

    async def _steps(self, c: Contract, role: str, locale: str) -> list[dict[str, Any]]:
        out = []
        me = c.owner_id if role == "owner" else c.borrower_id
        for action in offered(c, role):
            key = LABELS[action][role]
            if action == "propose_appointment":  # a sheet (time and place), which may be sent again if refused
                key = ("b_appt_other" if c.appt_proposed_by not in (None, me)
                       else "b_appt_change" if c.appointment_at is not None else key)
                out.append(await self._button(me, c.room_id, t(key, locale), {"c": c.id, "do": action},
                                              form="appointment"))
                continue
            payload: dict[str, Any] = {"c": c.id, "do": action}
            if action == "agree_appointment" and c.appt_proposed_at is not None:
                payload["at"] = c.appt_proposed_at.isoformat()  # this very proposal, not a later one
            out.append(await self._button(me, c.room_id, t(key, locale, amount=c.total), payload))
        return out

    # -- commands ----------------------------------------------------------------------------------
    async def rent(self, room_id: int, user_id: int, locale: str, item_id: int | None, text: str) -> None:
        room_item = await self._room_item(room_id, user_id)
        if item_id is None:
            item_id = room_item
        if item_id is None:
            raise Refusal(t("need_item", locale))
        reading = read_dates(text, self.rentals.clock.today())
        if reading is None:
            raise Refusal(t("bad_dates", locale, item=item_id), "rental.bad_dates")
        if reading.doubt:
            button = await self._button(user_id, room_id, t("yes_dates", locale),
                                        {"do": "dates", "item": item_id, "start": reading.start.isoformat(),
                                         "end": reading.end.isoformat()})
            await self.voice.say(room_id, t("confirm_dates", locale, reading=describe(reading, locale),
                                            why=t(reading.doubt, locale)), buttons=[button], audience=user_id,
                                 topic=f"dates{user_id}")
            return
        await self.request(room_id, user_id, locale, item_id, reading)

    async def request(self, room_id: int, user_id: int, locale: str, item_id: int, reading: DateReading) -> None:
        try:
            c, created = await self.rentals.request(user_id, item_id, reading.start, reading.end)
        except Conflict as e:
            if e.opened_room is not None:  # (refused, in a deal room it opened all the same: both are shown it)
                await self.voice.announce_room(*e.opened_room)
            if not isinstance(e, DatesTaken):
                raise
            buttons = [await self._button(user_id, room_id, describe(DateReading(s, en), locale),
                                          {"do": "dates", "item": item_id, "start": s.isoformat(),
                                           "end": en.isoformat()})
                       for s, en in e.free]
            await self.voice.say(room_id, t("taken" if buttons else "taken_none", locale), buttons=buttons,
                                 audience=user_id, topic=f"dates{user_id}")
            return
        await self.voice.retire(room_id, f"dates{user_id}")
        if created:
            await self.voice.announce_room(c.room_id, [c.owner_id, c.borrower_id])
        if c.room_id != room_id:
            title = await self.market.db.fetchval("SELECT title FROM items WHERE id = %s", (c.item_id,))
            await self.voice.say(room_id, t("request_sent", locale, title=title))

    async def pay(self, room_id: int, user_id: int, locale: str, arg: str | None) -> None:
        if arg == "link":
            await self._link_prompt(room_id, user_id, locale, "link_first")
            return
        c = await self.rentals.in_room(room_id)
        if c is None or c.state != "ACCEPTED" or c.borrower_id != user_id:
            raise Refusal(t("nothing_to_pay", locale))
        await self._pay(room_id, user_id, locale, c.id)

    async def return_(self, room_id: int, user_id: int, locale: str) -> None:
        c = await self.rentals.in_room(room_id)
        if c is None or c.role(user_id) is None:
            raise Refusal(t("no_contract", locale))
        if c.state == "RETURNED" and c.role(user_id) == "owner":  # the owner's step, again
            await self.on_event({"kind": "returned", "contract_id": c.id, "data": {"late_fee": c.late_fee},
                                 "id": None}, only="owner")
            return
        await self.rentals.mark_returned(user_id, c.id)

    async def cancel(self, room_id: int, user_id: int, locale: str) -> None:
        """Ask the person to confirm cancelling the room's rental (privately, with what it costs them)."""
        c = await self.rentals.in_room(room_id)
        if c is None or c.role(user_id) is None or c.state not in ("REQUESTED", "ACCEPTED", "PAID"):
            raise Refusal(render("rental.wrong_state", locale) if c is not None else t("no_contract", locale))
        terms = self.rentals.cancel_terms(c, c.role(user_id) or "")
        if c.state != "PAID":
            words = t("cancel_unpaid", locale)
        elif terms["free"]:
            words = t("cancel_free", locale)
        else:
            words = t("cancel_late", locale, refund=terms["refund"], owner=terms["owner_part"], **self._rules())
        button = await self._button(user_id, room_id, t("b_cancel_yes", locale), {
            "c": c.id, "do": "cancel", "sure": True, "terms": [c.state, terms["refund"]]})
        await self.voice.say(room_id, t("cancel_confirm", locale, terms=words), buttons=[button], audience=user_id,
                             topic=topic(c.id))

    async def extend(self, room_id: int, user_id: int, locale: str, text: str) -> None:
        c = await self.rentals.in_room(room_id)
        if c is None or c.borrower_id != user_id or c.state not in ("IN_USE", "OVERDUE"):
            raise Refusal(t("no_contract", locale))
        reading = read_dates(text, self.rentals.clock.today())
        if reading is None:
            await self.voice.flows.save(room_id, user_id, FlowRecord(PROMPT, "extension", {"c": c.id}))
            await self.voice.say(room_id, t("ask_extension", locale), audience=user_id)
            return
        await self.rentals.request_extension(user_id, c.id, reading.end)

    async def picked(self, room_id: int, user_id: int, locale: str, dates: dict[str, Any]) -> None:
        """The date picker's request: its exact dates (ISO), whatever words went with them."""
        item_id = await self._room_item(room_id, user_id)
        try:
            reading = DateReading(date.fromisoformat(str(dates.get("start"))), date.fromisoformat(str(dates.get("end"))))
        except ValueError:
            raise Refusal(render("rental.bad_dates", locale), "rental.bad_dates") from None
        if item_id is not None:
            await self.request(room_id, user_id, locale, item_id, reading)

    async def borrower_here(self, room_id: int, user_id: int) -> bool:
        return await self._room_item(room_id, user_id) is not None

    async def in_progress(self, room_id: int, user_id: int) -> bool:
        """Whether the room has a rental of this person's that can still be cancelled."""
        c = await self.rentals.in_room(room_id)
        return c is not None and c.role(user_id) is not None and c.state in ("REQUESTED", "ACCEPTED", "PAID")

    async def _room_item(self, room_id: int, user_id: int) -> int | None:
        row = await self.market.db.fetchone("SELECT kind, item_id, borrower_id FROM rooms WHERE id = %s", (room_id,))
        if row and row["kind"] == "deal" and row["borrower_id"] == user_id:
            return int(row["item_id"])
        return None

    # -- paying and the bank link ------------------------------------------------------------------
    async def _pay(self, room_id: int, user_id: int, locale: str, cid: int, check: str | None = None
                   ) -> dict[str, Any] | None:
        """Charge the borrower; what came of it, truthfully: a refusal (the bank's reason) is raised for the
        presser, an unanswered charge is ``pending`` (the result inquiry will tell), a link to make first is a
        prompt."""
        try:
            await self.rentals.pay_now(user_id, cid, confirm=check)
        except MarketError as e:
            if e.code in ("pay.no_link", "pay.relink"):
                await self._link_prompt(room_id, user_id, locale, "link_first")
                return None
            if e.code in ("pay.confirm_link", "pay.link_changed"):
                await self._confirm_first_pay(room_id, user_id, locale, await self.rentals.get(cid, user_id),
                                              changed=e.code == "pay.link_changed")
                return None
            if e.code in ("pay.unknown", "pay.in_progress"):
                return {"pending": True, "message": render(e.code, locale)}
            raise  # refused (잔액 부족 …), or the bank unreachable: the presser hears which, in the answer
        return None

    async def _confirm_first_pay(self, room_id: int, user_id: int, locale: str, c: Contract, *,
                                 changed: bool = False) -> None:
        """Before the first charge to a newly linked account: its bank, masked number, holder and the amount,
        to the borrower alone, with one 결제 button bound to that very account."""
        assert self.market.billipay is not None
        acct = await self.market.billipay.first_use(user_id)
        if acct is None:  # confirmed meanwhile (another device): the ordinary pay button
            button = await self._button(user_id, room_id, t("b_pay", locale, amount=c.total), {"c": c.id, "do": "pay"})
            again = await self.voice.say(room_id, t("accepted", locale, deadline=_when(c.expires_at)), buttons=[button],
                                         audience=user_id, topic=topic(c.id))
            await self.voice.retire(room_id, topic(c.id), below=again.message.seq)
            return
        amounts = [[t("f_rent", locale), won(c.rent, locale)], [t("f_fee", locale), won(c.fee, locale)],
                   [t("f_deposit", locale), won(c.deposit, locale)], [t("f_total", locale), won(c.total, locale)]]
        button = await self._button(user_id, room_id, t("b_confirm_pay", locale),
                                    {"c": c.id, "do": "pay", "check": acct["check"]})
        card = await self._account_card(room_id, user_id, locale, c, acct, amounts, button,
                                        t("confirm_pay_changed" if changed else "confirm_pay", locale))
        await self.voice.retire(room_id, topic(c.id), below=card.message.seq)  # this card's 결제 is the one

    async def _extension_waits_for_account(self, room_id: int, cid: int) -> None:
        """The owner approved an extension, but the borrower's account is new: the borrower checks it first
        (privately, with the extension's amount), and the owner is told to wait. When there is nothing (left) to
        check, the owner gets the approve button again."""
        assert self.market.billipay is not None
        c = await self.rentals.get(cid)
        if c.state not in ("IN_USE", "OVERDUE") or c.ext_end_date is None:
            return
        acct = await self.market.billipay.first_use(c.borrower_id)
        if acct is None:
            await self._approve_again(c)
            return
        locale = await self.voice.locale(c.borrower_id)
        extra = (c.ext_rent or 0) + (c.ext_fee or 0)
        amounts = [[t("f_rent", locale), won(c.ext_rent or 0, locale)], [t("f_fee", locale), won(c.ext_fee or 0, locale)],
                   [t("f_total", locale), won(extra, locale)]]
        button = await self._button(c.borrower_id, room_id, t("b_account_ok", locale),
                                    {"c": c.id, "do": "account_ok", "check": acct["check"]})
        await self._account_card(room_id, c.borrower_id, locale, c, acct, amounts, button,
                                 t("confirm_ext_account", locale))
        await self.voice.say(room_id, t("wait_account", await self.voice.locale(c.owner_id)), audience=c.owner_id)

    async def _approve_again(self, c: Contract) -> None:
        """The borrower's account is settled: the owner alone gets the extension's approve/decline buttons
        again (if it is still waiting)."""
        if c.state not in ("IN_USE", "OVERDUE") or c.ext_end_date is None:
            return
        locale = await self.voice.locale(c.owner_id)
        buttons = [await self._button(c.owner_id, c.room_id, t(LABELS[a]["owner"], locale), {"c": c.id, "do": a})
                   for a in ("approve_extension", "decline_extension")]
        await self.voice.say(c.room_id, t("approve_again", locale), buttons=buttons, audience=c.owner_id,
                             topic=topic(c.id))

    async def _account_card(self, room_id: int, user_id: int, locale: str, c: Contract, acct: dict[str, Any],
                            amounts: list[list[str]], button: dict[str, Any], text: str) -> Sent:
        """A private card with the linked account (bank, masked number, holder) and what it is about to pay."""
        holder = (t("f_holder_differs", locale, holder=acct["holder"]) if acct["holder_differs"]
                  else acct["holder"])
        card = {"title": t("c_confirm", locale), "subtitle": f"#{c.item_id}", "contract_id": c.id,
                "fields": [[t("f_bank", locale), acct["bank_name"]], [t("f_account", locale), acct["account"]],
                           [t("f_holder", locale), holder], *amounts]}
        if acct["holder_differs"]:
            text += "\n" + t("holder_differs", locale, holder=acct["holder"], person=acct["person"])
        return await self.voice.say(room_id, text, cards=[card], buttons=[button], audience=user_id,
                                    topic=topic(c.id))

    async def after_link(self, room_id: int, user_id: int, account: dict[str, Any]) -> None:
        """The bank sent the person back: their link prompts retire; they alone are told in the room they started
        from and, when a payment was waiting for the link, shown the confirmation card to pay with (one 결제
        button, never a spent one); payouts that waited for the link go out now."""
        locale = await self.voice.locale(user_id)
        await self.voice.retire(room_id, f"link{user_id}")
        await self.voice.say(room_id, t("linked", locale, bank=account["bank_name"], account=account["account"]),
                             audience=user_id)
        c = await self.rentals.in_room(room_id)
        if c is not None and c.state == "ACCEPTED" and c.borrower_id == user_id:
            await self._confirm_first_pay(room_id, user_id, locale, c)
        elif c is not None and c.borrower_id == user_id and c.ext_end_date is not None:
            await self._extension_waits_for_account(room_id, c.id)  # an extension waited for this link
        await self.rentals.payouts_for(user_id)

    async def _link_prompt(self, room_id: int, user_id: int, locale: str, key: str, *,
                           client_msg_id: str | None = None, **params: Any) -> None:
        """The bank-link button, for the person alone (the other member never sees it); one live at a time."""
        if self.market.billipay is None:
            raise Refusal(render("pay.not_configured", locale))
        ticket = await self.market.billipay.ticket(user_id, room_id)
        sent = await self.voice.say(room_id, t(key, locale, **params), audience=user_id, topic=f"link{user_id}",
                                    client_msg_id=client_msg_id, buttons=[
                                        {"label": t("link_button", locale), "url": f"/billipay/link?ticket={ticket}"}])
        await self.voice.retire(room_id, f"link{user_id}", below=sent.message.seq)

    # -- buttons -----------------------------------------------------------------------------------
    async def press(self, room_id: int, user_id: int, locale: str, payload: dict[str, Any],
                    given: dict[str, Any] | None = None) -> str | dict[str, Any] | None:
        """Carry out a rental button; returns words for the presser's toast (or the answer's fields, e.g. a
        ``pending`` payment), if any. A refusal raises."""
        do, cid, r = payload.get("do"), payload.get("c"), self.rentals
        if do == "request":  # the intro card's 대여 요청: dates from the picker, or asked for
            if given and given.get("start") and given.get("end"):
                try:
                    reading = DateReading(date.fromisoformat(str(given["start"])), date.fromisoformat(str(given["end"])))
                except ValueError:
                    raise Refusal(t("bad_dates", locale, item=payload["item"])) from None
                await self.request(room_id, user_id, locale, int(payload["item"]), reading)
                return None
            await self.voice.flows.save(room_id, user_id, FlowRecord(PROMPT, "dates", {"item": payload["item"]}))
            await self.voice.say(room_id, t("ask_dates", locale), audience=user_id,
                                 quick_replies=["내일부터 3일", "이번 주말", "다음 주말"])
        elif do == "dates":
            reading = DateReading(date.fromisoformat(payload["start"]), date.fromisoformat(payload["end"]))
            await self.request(room_id, user_id, locale, int(payload["item"]), reading)
        elif do == "accept":
            await r.accept(user_id, cid)
        elif do == "decline":
            await r.decline(user_id, cid)
        elif do == "cancel":
            if payload.get("sure"):
                c = await r.get(cid, user_id)
                shown = payload.get("terms")
                now = [c.state, self.rentals.cancel_terms(c, c.role(user_id) or "")["refund"]]
                if shown is not None and shown != now and c.state in ("REQUESTED", "ACCEPTED", "PAID"):
                    await self.cancel(room_id, user_id, locale)  # the terms changed since: ask again with these
                    raise Refusal(t("cancel_terms_changed", locale), "rental.terms_changed")
                await r.cancel(user_id, cid)
            else:
                await self.cancel(room_id, user_id, locale)
        elif do == "pay":
            check = payload.get("check")
            return await self._pay(room_id, user_id, locale, int(cid), check if isinstance(check, str) else None)
        elif do == "propose_appointment":
            given = given or {}
            await r.propose_appointment(user_id, cid, given.get("at"), given.get("place"))
            return t("appt_sent", locale)
        elif do == "agree_appointment":
            await r.agree_appointment(user_id, cid, payload.get("at"))
        elif do == "hand_over":
            await r.hand_over(user_id, cid)
        elif do == "object_handover":
            await r.object_handover(user_id, cid)
        elif do == "declare_return":
            await r.declare_return(user_id, cid)
        elif do == "confirm_return":
            await r.confirm_return(user_id, cid)
        elif do == "object_return":
            await r.object_return(user_id, cid)
        elif do == "confirm_ok":
            await r.confirm_ok(user_id, cid)
        elif do == "claim":
            c = await r.get(cid, user_id)
            if c.owner_id != user_id:
                return "button_not_yours"
            if c.state != "RETURNED":
                raise Refusal(render("rental.wrong_state", locale))
            await self.voice.flows.save(room_id, user_id, FlowRecord(PROMPT, "claim_amount", {"c": c.id}))
            await self.voice.say(room_id, t("ask_claim_amount", locale, max=r.claim_limit(c)), audience=user_id)
        elif do == "report_lost":
            if payload.get("sure"):
                await r.report_lost(user_id, cid)
            else:
                c = await r.get(cid, user_id)
                if c.owner_id != user_id:
                    return "button_not_yours"
                button = await self._button(user_id, room_id, t("b_lost_yes", locale), {"c": cid, "do": "report_lost",
                                                                                         "sure": True})
                await self.voice.say(room_id, t("lost_confirm", locale, deposit=c.deposit), buttons=[button],
                                     audience=user_id, topic=topic(c.id))
        elif do == "accept_claim":
            await r.accept_claim(user_id, cid)
        elif do == "dispute":
            await r.dispute(user_id, cid)
        elif do == "request_extension":
            await self.voice.flows.save(room_id, user_id, FlowRecord(PROMPT, "extension", {"c": cid}))
            await self.voice.say(room_id, t("ask_extension", locale), audience=user_id)
        elif do == "approve_extension":
            try:
                await r.approve_extension(user_id, cid)
            except MarketError as e:
                if e.code == "pay.confirm_link":
                    await self._extension_waits_for_account(room_id, int(cid))
                elif e.code in ("pay.unknown", "pay.in_progress"):
                    return {"pending": True, "message": render("pay.unknown_other", locale)}
                elif e.code in BANK_REFUSALS | {"pay.no_link", "pay.relink", "pay.link_changed", "pay.unreachable"}:
                    # the borrower's charge failed: the owner hears that it did, not the bank's reason (the
                    # borrower does, in their extension_failed line)
                    raise Refusal(t("extension_failed_other", locale), "rental.extension_failed") from None
                else:
                    raise
        elif do == "account_ok":
            assert self.market.billipay is not None
            try:
                await self.market.billipay.confirm_account(user_id, str(payload.get("check")))
            except MarketError as e:
                if e.code == "pay.link_changed":  # another account was linked meanwhile: show that one
                    await self._extension_waits_for_account(room_id, int(cid))
                    return None
                if e.code in ("pay.relink", "pay.no_link"):  # the extension goes on once it is linked again
                    await self._link_prompt(room_id, user_id, locale, "link_first")
                    return None
                raise
            await self.voice.say(room_id, t("account_checked", locale), audience=user_id)
            await self._approve_again(await r.get(cid, user_id))
        elif do == "decline_extension":
            await r.decline_extension(user_id, cid)
        elif do == "review":
            return await self._review(room_id, user_id, locale, payload, given or {})
        else:
            return "button_invalid"
        return None

    async def _review(self, room_id: int, user_id: int, locale: str, payload: dict[str, Any],
                      given: dict[str, Any]) -> str:
        """A review from its private sheet (stars and words); it is never a message in the room."""
        stars = given.get("stars")
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
            raise Refusal(t("bad_review", locale))
        cid, about = int(payload["c"]), str(payload["about"])
        await self.market.reviews.write(user_id, cid, about, stars, given.get("text") or "")
        await self.voice.retire(room_id, f"review{cid}:{user_id}")
        if about == "owner":
            await self._ask_review(await self.rentals.get(cid), user_id, "item")
        return t("review_saved", locale)

    async def prompt(self, room_id: int, user_id: int, locale: str, record: FlowRecord, text: str) -> bool:
        """A typed answer to one of the flow's questions; returns whether the prompt continues."""
        if record.state == "dates":
            reading = read_dates(text, self.rentals.clock.today())
            if reading is None:
                await self.voice.say(room_id, t("ask_dates", locale), audience=user_id)
                return True
            await self.voice.flows.clear(room_id, user_id)
            await self.rent(room_id, user_id, locale, int(record.data["item"]), text)
            return False
        if record.state == "extension":
            reading = read_dates(text, self.rentals.clock.today())
            if reading is None:
                await self.voice.say(room_id, t("ask_extension", locale), audience=user_id)
                return True
            await self.voice.flows.clear(room_id, user_id)
            await self.rentals.request_extension(user_id, record.data["c"], reading.end)
            return False
        c = await self.rentals.get(record.data["c"], user_id)
        limit = self.rentals.claim_limit(c)
        if record.state == "claim_amount":
            amount = parse_won(text)
            if amount is None or not 1 <= amount <= limit:
                raise Refusal(t("bad_amount", locale, max=limit))  # the question stays open
            record.data["amount"] = amount
            record.state = "claim_note"
            await self.voice.flows.save(room_id, user_id, record)
            await self.voice.say(room_id, t("ask_claim_note", locale), audience=user_id)
            return True
        await self.voice.flows.clear(room_id, user_id)
        await self.rentals.claim(user_id, c.id, int(record.data["amount"]), text)
        return False

    # -- announcing events -------------------------------------------------------------------------
    async def on_event(self, event: dict[str, Any], only: str | None = None) -> None:
        """One contract event as each person sees it (one announcement of a contract at a time: its lock is
        claimed in one command, given back with the others this process gives back meanwhile; the library's waiting
        lock, on the same key, when another announcement of the contract holds it)."""
        key, token = f"bot:announce:{event['contract_id']}", secrets.token_hex(16)
        if not await self.market.redis.set(key, token, nx=True, px=ANNOUNCE_LOCK_S * 1000):
            async with self.market.redis.lock(key, timeout=ANNOUNCE_LOCK_S, blocking_timeout=ANNOUNCE_LOCK_S):
                await self._announce_held(event, only)
            return
        try:
            await self._announce_held(event, only)
        finally:
            try:
                await self.voice.give_back(key, token)
            except Exception:  # noqa: BLE001 — it lapses by itself after ANNOUNCE_LOCK_S
                log.exception("could not give back a contract announcement's lock", extra={"contract":
                                                                                           event["contract_id"]})

    async def _announce_held(self, event: dict[str, Any], only: str | None) -> None:
        """``on_event``, its lock held."""
        # Whether it was announced, the contract, both people's names and languages (each line names them,
        # each card is in its reader's language) and the item's title and photo for a card: one query. A new
        # contract's first event carries the contract as it was just written (``contract``): not read again.
        written = event.get("contract")
        if isinstance(written, Contract) and isinstance(event.get("people"), Mapping):
            # (what the request read of the two and the item, with it; its messages are stored once however many
            # times it is announced, and a first event retires nothing: not asked whether it was announced)
            row = {"announced_at": None, **event["people"]}
        elif isinstance(written, Contract):
            row = await self.market.db.fetchone(_ANNOUNCING_NEW, (event.get("id"), written.borrower_id,
                                                                  written.item_id, written.owner_id))
        else:
            row = await self.market.db.fetchone(_ANNOUNCING, (event.get("id"), event["contract_id"]))
        if row is None:
            raise NotFound("rental.not_found")
        if event.get("id") and row["announced_at"] is not None:
            return  # another node announced it while this one waited (a late copy must not retire newer steps)
        c = written if isinstance(written, Contract) else Contract.from_row(row)
        await self._announce(event, only, c, row)

    async def _announce(self, event: dict[str, Any], only: str | None, c: Contract, row: Mapping[str, Any]) -> None:
        """Each person gets their line with the buttons of what they can do now; then the steps before it retire.
        An event that leaves nothing to do (a final state, or an operator's turn) is one message both see."""
        mark = _NAMES.set(None)
        try:
            await self._announce_event(event, only, c, row)
        finally:
            _NAMES.reset(mark)  # (the names read for this announcement are never used for a later one)

    async def _announce_event(self, event: dict[str, Any], only: str | None, c: Contract,
                              row: Mapping[str, Any]) -> None:
        kind, data = event["kind"], event.get("data") or {}
        room, cmid = c.room_id, _cmid(event)
        people = {"owner": c.owner_id, "borrower": c.borrower_id}
        _NAMES.set({uid: str(row[f"{who}_nickname"]) for who, uid in (("o", c.owner_id), ("b", c.borrower_id))
                    if row[f"{who}_nickname"] is not None})
        item = {"title": row["title"], "thumb": row["thumb"]} if row["title"] is not None else None
        locales = {"owner": "en" if row["o_locale"] == "en" else "ko",
                   "borrower": "en" if row["b_locale"] == "en" else "ko"}
        if kind in ("paid_out", "payout_held"):  # money to one person: theirs to know
            await self._money_line(c, kind, data, people, locales, cmid)
            return
        if kind in ("settled", "claim_accepted", "resolved", "lost"):
            await self._settled(c, kind, data, people, locales, cmid)
            return
        lines = self._lines(c, kind, {**data, "from_state": event.get("from_state")}, event.get("actor_id"))
        if lines is None:
            return
        # Decided by the event alone (never by the contract's state when it is announced), so an announcement
        # repeated later is stored as the same messages.
        shared = only is None and lines[0] == lines[1] and event.get("to_state") in (*FINAL, "DISPUTED")
        out: dict[str, tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = {}
        async with self.voice.buttons.batch():  # both lines' buttons stored in one Redis trip, before either is posted
            for role, key in zip(("owner", "borrower"), lines, strict=True):
                if only is not None and role != only:
                    continue
                loc = locales[role]
                params = await self._params(c, kind, data, loc, role, event.get("actor_id"))
                text = t(key, loc, **params)
                if kind == "returned" and data.get("automatic"):
                    text = t("returned_auto", loc, **params) + "\n" + text
                if kind == "paid" and data.get("starts_soon") and c.appointment_at is None:
                    text += "\n" + t("starts_soon", loc, **params)
                if kind == "extended" and data.get("late_fee_removed"):
                    text += t("late_fee_removed", loc, fee=data["late_fee_removed"])
                if kind == "claimed" and data.get("rent_paid"):
                    text += "\n" + t("rent_paid_now", loc, amount=data["rent_paid"])
                if kind in ("handover_objected", "disputed"):
                    text += "\n" + t("operator_checking", loc)
                cards = [await self._contract_card(c, loc, role, item)] if (kind, role) in (
                    ("requested", "owner"), ("accepted", "borrower")) else []
                out[role] = (text, cards, [] if shared else await self._steps(c, role, loc))
        posted: list[Sent] = []
        if shared:
            posted.append(await self.voice.say(room, out["owner"][0], client_msg_id=cmid))
        else:
            # Each person's line, handed to the message writer together: both stored in one transaction (in this
            # order), each still for its own person, and published in seq order.
            together = [
                {"text": text, "cards": cards, "buttons": buttons, "audience": people[role],
                 "topic": topic(c.id) if buttons else None, "client_msg_id": f"{cmid}{role[0]}" if cmid else None}
                for role, (text, cards, buttons) in out.items()]
            if only is None and together and event.get("announced") is not None:
                together[-1]["also"] = event["announced"]  # (marked announced with its last line)
            posted += await self.voice.say_together(room, together)
        if only is None and kind != "requested":
            # The steps before this one retire — after it is posted, and never its own messages or a later
            # step's: an announcement repeated after a crash finds its messages stored (the same seqs). (A request
            # is its contract's first event: no step before it.)
            await self.voice.retire(room, topic(c.id), below=min(p.message.seq for p in posted))
        if any(not p.duplicate for p in posted):
            if kind in ("extension_failed",) and data.get("reason") in ("pay.relink", "pay.no_link"):
                await self._link_prompt(room, c.borrower_id, locales["borrower"], "link_first")  # the way out
            await self.voice.deal_changed(room)

    def _lines(self, c: Contract, kind: str, data: dict[str, Any], actor: int | None = None
               ) -> tuple[str, str] | None:
        if kind == "starts_tomorrow" and c.appointment_at is not None:
            return "starts_tomorrow_agreed", "starts_tomorrow_agreed"
        if kind == "appointment_proposed":  # the proposer waits; the other answers
            return ("appt_proposed_self", "appt_proposed") if actor == c.owner_id else ("appt_proposed",
                                                                                        "appt_proposed_self")
        if kind in LINES:
            return LINES[kind]
        if kind == "expired":
            key = "expired_request" if data.get("from_state") == "REQUESTED" else "expired_payment"
            return key, key
        if kind == "late_payment_refunded":
            return "late_payment_refunded_other", {
                "rental.started": "late_payment_refunded_started",
                "rental.dates_taken": "late_payment_refunded_taken"}.get(data.get("reason", ""), "late_payment_refunded")
        if kind == "cancelled":
            if not data.get("refund"):
                return "cancelled", "cancelled"
            return ("cancelled" if data.get("free") or not data.get("owner_part") else "cancelled_owner_part",
                    "cancelled_refund")
        if kind == "handover_objected":
            key = f"handover_objected_{data.get('by', 'borrower')}"
            return key, key
        if kind == "handover_resolved":
            if data.get("handed") is False:
                return "handover_resolved_no_owner", "handover_resolved_no"
            key = "handover_resolved_not_yet" if data.get("handed") is None else "handover_resolved_yes"
            return key, key
        if kind == "claimed":
            if data.get("claim_kind") == "lost":
                return (("claimed_lost_auto_owner", "claimed_lost_auto") if data.get("automatic")
                        else ("claimed_lost_self", "claimed_lost"))
            return "claimed_self", "claimed"
        if kind == "disputed":
            key = "disputed_unanswered" if data.get("unanswered") else "disputed"
            return key, key
        return None

    async def _params(self, c: Contract, kind: str, data: dict[str, Any], loc: str, role: str = "borrower",
                      actor: int | None = None) -> dict[str, Any]:
        """Everything a line may name (each line uses some); amounts as the person sees them."""
        amount = data.get("amount", c.total if kind == "paid" else 0)
        if kind == "extension_requested":  # the owner is paid the rent; the fee is the borrower's to pay
            amount = data["rent"] + (data["fee"] if role == "borrower" else 0)
        elif kind == "claimed" and data.get("claim_kind") == "lost":
            amount = data.get("deposit", c.deposit)
        late = ""
        if kind in ("return_declared", "returned", "claimed") and data.get("late_fee"):
            late = t("late_note", loc, days=data.get("late_days", 0), fee=data["late_fee"])
        end = date.fromisoformat(data["end_date"]) if kind == "extension_requested" else c.end_date
        extra = ""
        if kind == "cancelled" and data.get("refund") and not data.get("free"):
            extra = t("late_cancel_extra", loc, **self._rules(), owner=data.get("owner_part", 0),
                      fee=data.get("fee_part", 0))
        at, place = c.appointment_at, c.appointment_place
        if kind == "appointment_proposed":
            at, place = datetime.fromisoformat(data["at"]), data.get("place", "")
        return {**self._rules(), "name": await self._nickname(c.borrower_id), "deadline": _when(c.expires_at),
                "who": await self._nickname(actor) if actor else "",
                "when": meeting(at, loc) if at else "", "place": place or "",
                "amount": amount, "end": day_label(end, loc), "start": day_label(c.start_date, loc),
                "daily": c.price_per_day, "days": data.get("days", data.get("late_days", self.rentals.rules.lost_after_days)),
                "fee": data.get("late_fee", 0), "late": late, "refund": data.get("refund", 0), "extra": extra,
                "owner": data.get("owner_part", 0), "note": data.get("note") or "-",
                "photos": len([p for p in await self.rentals.photos(c.id) if p["stage"] == "claim"]) if kind == "claimed"
                else 0,
                "reason": render(data.get("reason", "pay.declined"), loc)}

    async def _money_line(self, c: Contract, kind: str, data: dict[str, Any], people: dict[str, int],
                          locales: dict[str, str], cmid: str | None) -> None:
        to = "owner" if data.get("to") == "owner" else "borrower"
        other = "borrower" if to == "owner" else "owner"
        loc = locales[to]
        if kind == "paid_out":
            await self.voice.say(c.room_id, t(f"paid_out_{to}", loc, amount=data.get("amount", 0)), audience=people[to],
                                 client_msg_id=cmid)
            return
        sent = await self.voice.say(c.room_id, t("payout_held", loc, amount=data.get("amount", 0),
                                                 reason=render(data.get("reason", "pay.declined"), loc)),
                                    audience=people[to], client_msg_id=cmid)
        if not sent.duplicate:
            await self.voice.say(c.room_id, t("payout_held_other", locales[other]), audience=people[other],
                                 client_msg_id=f"{cmid}o" if cmid else None)

    async def _settled(self, c: Contract, kind: str, data: dict[str, Any], people: dict[str, int],
                       locales: dict[str, str], cmid: str | None) -> None:
        """The end: each person hears their own money; payouts waiting for a bank link ask for one; each is
        asked, privately, for a review."""
        await self.voice.retire(c.room_id, topic(c.id))
        fresh = False
        for role in ("owner", "borrower"):
            loc = locales[role]
            lead = {"claim_accepted": t("claim_accepted", loc), "lost": t("lost", loc),
                    "resolved": t("resolved", loc, amount=data.get("amount", 0), note=data.get("note", "")),
                    "settled": t("settled_auto", loc, **self._rules()) if data.get("automatic") else ""}[kind]
            if role == "owner":
                parts = t("settled_parts", loc, rent=c.rent + c.extra_rent,
                          late=t("settled_late", loc, fee=data["late_fee"]) if data.get("late_fee") else "",
                          claim=t("settled_claim", loc, claim=data["claim"]) if data.get("claim") else "")
                text = t("settled_owner", loc, owner=data.get("owner", 0), owner_parts=parts)
            else:
                text = t("settled_borrower" if data.get("borrower") else "settled_borrower_none", loc,
                         borrower=data.get("borrower", 0))
            said = await self.voice.say(c.room_id, (lead + "\n" if lead else "") + text, audience=people[role],
                                        client_msg_id=f"{cmid}{role[0]}" if cmid else None)
            fresh = fresh or not said.duplicate
        if fresh:
            await self.voice.deal_changed(c.room_id)
        # What follows has ids of its own: an announcement repeated after a crash posts what is missing, once.
        for role, amount in (("owner", data.get("owner", 0)), ("borrower", data.get("borrower", 0))):
            who = people[role]
            if amount and self.market.billipay and await self.market.billipay.account(who) is None:
                await self._link_prompt(c.room_id, who, locales[role], "link_payout", name=await self._nickname(who),
                                        client_msg_id=f"{cmid}L{role[0]}" if cmid else None)
        await self._ask_review(c, c.borrower_id, "owner", f"{cmid}R" if cmid else None)
        await self._ask_review(c, c.owner_id, "borrower", f"{cmid}r" if cmid else None)

    async def _ask_review(self, c: Contract, user_id: int, about: str, client_msg_id: str | None = None) -> None:
        """A private card for one person with one 후기 쓰기 button: the widget opens a sheet (stars and words)
        and sends them with the press; nothing of it is posted to the room."""
        locale = await self.voice.locale(user_id)
        # Not single-use: a sheet the market refuses (no stars) can be sent again; once written, the button
        # retires (and a second review is refused by the market anyway).
        button = await self._button(user_id, c.room_id, t("b_review", locale), {"c": c.id, "do": "review",
                                                                               "about": about}, form="review")
        if about == "item":
            text = t("review_ask_item", locale)
        else:
            other = c.owner_id if about == "owner" else c.borrower_id
            text = t("review_ask_borrower" if about == "owner" else "review_ask_owner", locale,
                     name=await self._nickname(user_id), other=await self._nickname(other))
        await self.voice.say(c.room_id, text, buttons=[button], audience=user_id, topic=f"review{c.id}:{user_id}",
                             client_msg_id=client_msg_id)

    async def _contract_card(self, c: Contract, locale: str, role: str = "borrower",
                             item: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """(``item``: its ``title`` and ``thumb``, when the caller read them already)"""
        if item is None:
            item = await self.market.db.fetchone(
                "SELECT i.title, (SELECT p.thumb_key FROM item_photos p WHERE p.item_id = i.id ORDER BY p.position"
                " LIMIT 1) AS thumb FROM items i WHERE i.id = %s", (c.item_id,))
        reading = DateReading(c.start_date, c.end_date)
        money = ([[t("f_rent", locale), won(c.rent, locale)], [t("f_deposit", locale), won(c.deposit, locale)],
                  [t("f_fee", locale), won(c.fee, locale)], [t("f_total", locale), won(c.total, locale)]]
                 if role == "borrower" else [[t("f_owner_gets", locale), won(c.rent, locale)],
                                             [t("f_deposit", locale), won(c.deposit, locale)]])
        # (the dates once, in the fields; the state, live, is on top of the room)
        return {"title": f"#{c.item_id} {item['title'] if item else ''}",
                "image": media_url(item["thumb"]) if item else None, "contract_id": c.id,
                "fields": [[t("f_dates", locale), f"{day_label(reading.start, locale)} ~ {day_label(reading.end, locale)}"],
                           [t("f_days", locale), str(c.days)],
                           *money]}

    # -- the deal on top of the room ---------------------------------------------------------------
    async def deal_view(self, room_id: int, viewer: int) -> dict[str, Any] | None:
        """What is pinned on top of a deal room for ``viewer``: the item, the latest contract's dates and money
        (the borrower's total, or the owner's rent), its state as people say it, and the viewer's menu (cancel)."""
        room = await self.market.db.fetchone(
            "SELECT r.kind, r.item_id, r.owner_id, r.borrower_id, i.title, i.price_per_day, i.deposit,"
            " (SELECT p.thumb_key FROM item_photos p WHERE p.item_id = i.id ORDER BY p.position LIMIT 1) AS thumb"
            " FROM rooms r JOIN items i ON i.id = r.item_id WHERE r.id = %s", (room_id,))
        if room is None or room["kind"] != "deal" or viewer not in (room["owner_id"], room["borrower_id"]):
            return None
        locale = await self.voice.locale(viewer)
        c = await self.rentals.in_room(room_id, open_only=False)
        out: dict[str, Any] = {
            "room": room_id, "item": {"id": room["item_id"], "title": room["title"], "thumbnail": media_url(room["thumb"]),
                                      "price_per_day": room["price_per_day"], "deposit": room["deposit"]},
            "role": "owner" if viewer == room["owner_id"] else "borrower",
            "chip": chip(None, locale=locale), "state": None, "contract": None, "actions": []}
        if c is None:
            return out
        role = c.role(viewer) or "borrower"
        reading = DateReading(c.start_date, c.end_date)
        out.update(state=c.state, chip=chip(c.state, c.return_declared_at is not None, locale), contract={
            "id": c.id, "start_date": c.start_date.isoformat(), "end_date": c.end_date.isoformat(),
            "dates": describe(reading, locale), "days": c.days,
            "amount_label": t("f_total" if role == "borrower" else "f_owner_gets", locale),
            "amount": c.total + c.extra_rent + c.extra_fee if role == "borrower" else c.rent + c.extra_rent,
            # the exact place: only here, for the two people of the deal
            "appointment": f"{meeting(c.appointment_at, locale)} · {c.appointment_place}"
            if c.appointment_at is not None and c.state in ("PAID", "IN_USE", "OVERDUE") else None})
        if c.state in ("REQUESTED", "ACCEPTED", "PAID") and c.owner_handed_at is None and c.borrower_got_at is None:
            # one menu button per person and state, issued once however often the header is fetched
            key = f"bot:deal:{room_id}:{viewer}:{c.id}:{c.state}:{locale}"
            cached = await self.market.redis.get(key)
            if cached is None:
                label = t("b_cancel_paid" if c.state == "PAID" else "b_cancel", locale)
                cached = json.dumps(await self._button(viewer, room_id, label, {"c": c.id, "do": "cancel"}))
                await self.market.redis.set(key, cached, ex=BUTTON_TTL_S)
            out["actions"].append(json.loads(cached))
        return out

    async def _nickname(self, user_id: int) -> str:
        known = _NAMES.get()
        if known is not None and user_id in known:  # (read with the announcement's two people)
            return known[user_id]
        return str(await self.market.db.fetchval("SELECT nickname FROM users WHERE id = %s", (user_id,)) or "")


def meeting(at: datetime, locale: str) -> str:
    """A UTC appointment as Seoul time: "12월 5일(토) 14:00"."""
    local = at + timedelta(hours=9)
    return f"{day_label(local.date(), locale)} {local.hour:02d}:{local.minute:02d}"


def _when(at: Any) -> str:
    """A UTC deadline as Seoul time: "11월 28일 14:05"."""
    if at is None:
        return "-"
    local = at + timedelta(hours=9)
    return f"{local.month}월 {local.day}일 {local.hour:02d}:{local.minute:02d}"


def _cmid(event: dict[str, Any]) -> str | None:
    return f"ev{event['id']}" if event.get("id") else None
