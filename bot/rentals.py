"""Rentals in the deal room: the request card, the owner's answer, BilliPay, hand-over, return, claims and
settlement — each step a card whose buttons only the right person may press (tokens bound to that person).

The market decides everything (``market.rentals``); this module turns a person's command or button into a
market call, and each contract event the market announces into the deal-room message for it. Two small
prompts ask for a typed answer: the new end date of an extension, and the amount and note of a damage claim.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from bot.flows import FlowRecord
from bot.flows.listing import parse_won
from bot.texts import won
from market.billipay import BANK_REASONS
from market.errors import MarketError
from market.rentals.kdates import DateReading, day_label, describe, read_dates
from market.messages import fill, render
from market.rentals import Contract, DatesTaken
from market.storage import media_url

if TYPE_CHECKING:
    from bot.engine import BotEngine
    from market.chat import Sent

PROMPT = "prompt"
BANK_REFUSALS = frozenset(BANK_REASONS.values()) | {"pay.declined"}
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
    "request": ("{name}님이 대여를 요청했어요. 주인은 {deadline}까지 수락하거나 거절해 주세요.",
                "{name} requested a rental. Owner, please accept or decline by {deadline}."),
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
    "disputed_unanswered": ("빌리는 분이 {claim_h}시간 동안 청구에 답하지 않아 운영자가 확인해요. 결정이 나면 알려 드릴게요.",
                            "The borrower did not answer the claim within {claim_h} hours, so an operator will "
                            "decide. You will be told."),
    "cancelled_refund": ("대여가 취소됐어요. 환불 {refund}원{extra}을 보낼게요.",
                         "The rental was cancelled. Refund: ₩{refund}{extra}."),
    "late_cancel_extra": (" (시작 {free_h}시간 전이 지나 대여료의 {percent}% {owner}원은 주인에게, 수수료 {fee}원은 환불되지 않아요)",
                          " (within {free_h} h of the start: {percent}% of the rent, ₩{owner}, goes to the owner; the fee"
                          " ₩{fee} is kept)"),
    "cancel_confirm": ("정말 취소할까요? {terms}", "Cancel this rental? {terms}"),
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
    "paid": ("결제가 끝났어요 ({amount}원). 물건을 주고받을 때 각자 버튼을 눌러 주세요. 물건 상태 사진을 이 방에 올리면 "
             "시간과 함께 증빙으로 남아요.",
             "Paid (₩{amount}). Each of you, press your button at the hand-over. Condition photos posted here are kept "
             "as timestamped evidence."),
    "handed": ("주인이 물건을 전달했어요. 받으셨으면 수령 완료를 눌러 주세요.", "The owner handed the item over. Borrower, confirm receipt."),
    "received": ("빌리는 분이 물건을 받았다고 했어요. 주인도 전달 완료를 눌러 주세요.",
                 "The borrower confirmed receipt. Owner, confirm the hand-over."),
    "in_use": ("대여가 시작됐어요. 반납일은 {end}이에요.", "The rental has started. Return by {end}."),
    "starts_tomorrow": ("내일 대여가 시작돼요 ({start}). 만날 시간과 장소를 정해 주세요.",
                        "The rental starts tomorrow ({start}). Agree where and when to meet."),
    "due_tomorrow": ("내일이 반납일이에요 ({end}). 연장이 필요하면 연장 요청을 눌러 주세요.",
                     "The item is due back tomorrow ({end}). Need longer? Request an extension."),
    "due_today": ("오늘이 반납일이에요 ({end}).", "The item is due back today ({end})."),
    "overdue": ("반납일이 지났어요. 하루 늦을 때마다 연체료 {daily}원이 보증금에서 빠져요.",
                "The return date has passed. A late fee of ₩{daily} per day comes out of the deposit."),
    "still_overdue": ("반납이 {days}일 늦었어요. 지금까지 연체료는 {fee}원이에요.",
                      "The item is {days} day(s) late; late fees so far: ₩{fee}."),
    "ask_extension": ("새 반납일을 알려 주세요. 예) 12/30, 다음주 금요일", "New return date? e.g. 12/30"),
    "extension_requested": ("빌리는 분이 {end}까지 연장을 요청했어요 ({days}일, 추가 {amount}원). 주인은 승인하거나 거절해 주세요.",
                            "The borrower asks to extend to {end} ({days} more days, ₩{amount}). Owner, approve or decline."),
    "extended": ("연장됐어요. 새 반납일은 {end}이고, 추가로 {amount}원을 결제했어요.",
                 "Extended to {end}; ₩{amount} was charged."),
    "extension_declined": ("주인이 연장을 거절했어요. 원래 반납일에 돌려주세요.", "The owner declined the extension."),
    "extension_failed": ("연장 결제가 되지 않아 연장하지 못했어요. {reason}", "The extension payment failed. {reason}"),
    "returned": ("반납됐어요{late}. 주인은 {claim_h}시간 안에 상태를 확인해 주세요. 확인이 없으면 보증금이 자동으로 환불돼요. "
                 "파손이 있으면 사진을 이 방에 올리고 파손 신고를 눌러 주세요.",
                 "Returned{late}. Owner, check the item within {claim_h} hours, or the deposit is refunded automatically. "
                 "For damage, post photos here and press Report damage."),
    "late_note": (" ({days}일 늦어 연체료 {fee}원)", " ({days} day(s) late: ₩{fee} late fee)"),
    "ask_claim_amount": ("청구할 금액을 알려 주세요 (최대 {max}원).", "How much do you claim? (at most ₩{max})"),
    "ask_claim_note": ("어떤 손상인지 적어 주세요. 사진은 이 방에 올리면 함께 제출돼요.",
                       "Describe the damage. Photos posted here are attached."),
    "bad_amount": ("금액을 숫자로 알려 주세요. 1원부터 {max}원까지예요.", "Give an amount from ₩1 to ₩{max}."),
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
    "return_declared": ("빌리는 분이 물건을 돌려줬다고 알렸어요{late}. 주인은 받았으면 반납 받음을, 아직 못 받았으면 아직 못 "
                        "받았어요를 눌러 주세요. {confirm_h}시간 안에 답이 없으면 받은 것으로 처리돼요.",
                        "The borrower says the item is back{late}. Owner: press Got it back, or Not yet if you do not "
                        "have it. Without an answer in {confirm_h} hours it counts as returned."),
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
    "settled": ("정산이 끝났어요.\n· 주인에게: {owner}원{owner_parts}\n· 빌리는 분 보증금 환불: {borrower}원\n· 수수료: {fees}원",
                "Settled.\n· To the owner: ₩{owner}{owner_parts}\n· Deposit refund: ₩{borrower}\n· Fee: ₩{fees}"),
    "settled_parts": (" (대여료 {rent}원{late}{claim})", " (rent ₩{rent}{late}{claim})"),
    "settled_late": (" + 연체료 {fee}원", " + late fee ₩{fee}"),
    "settled_claim": (" + 배상 {claim}원", " + damages ₩{claim}"),
    "settled_auto": ("{claim_h}시간 동안 파손 신고가 없어 보증금을 환불해요.",
                     "No claim within {claim_h} hours; the deposit is refunded."),
    "lost": ("주인이 분실을 신고했어요. 보증금 전액이 주인에게 가요.", "The owner reported the item lost; the deposit goes to the owner."),
    "resolved": ("운영자가 결정했어요: 주인에게 배상 {amount}원. {note}", "An operator decided: ₩{amount} to the owner. {note}"),
    "claim_accepted": ("빌리는 분이 청구를 수락했어요.", "The borrower accepted the claim."),
    "paid_out_owner": ("주인 계좌로 {amount}원을 보냈어요.", "₩{amount} was sent to the owner's account."),
    "paid_out_borrower": ("빌리는 분 계좌로 {amount}원을 돌려보냈어요.", "₩{amount} was sent back to the borrower."),
    "late_payment_refunded": ("결제가 늦게 확인됐지만 이미 예약이 끝나 {amount}원을 모두 돌려보낼게요.",
                              "The payment arrived after the booking ended; ₩{amount} will be refunded."),
    "review_ask_borrower": ("{name}님, 주인 {other}님과의 거래는 어땠나요? 별점을 골라 주세요. 두 분이 모두 쓰면 (또는 7일 뒤) 공개돼요.",
                            "{name}, how was renting from {other}? Pick the stars; reviews open when both of you have "
                            "written (or after 7 days)."),
    "review_ask_owner": ("{name}님, 빌린 분 {other}님은 어땠나요? 별점을 골라 주세요.",
                         "{name}, how was {other} as a borrower? Pick the stars."),
    "review_ask_item": ("물건 자체는 어땠나요? 별점을 골라 주세요.", "And the item itself?"),
    "review_words": ("별 {stars}개를 골랐어요. 한 줄 후기를 남겨 주세요. (없으면 '없음')",
                     "{stars} stars. A few words? ('없음' for none)"),
    "review_saved": ("후기를 남겼어요. 고마워요!", "Review saved. Thank you!"),
    "not_your_turn": ("지금은 상대방이 할 차례예요.", "It is the other person's turn."),
    # buttons and fields
    "b_request": ("대여 요청", "Request"), "b_accept": ("수락", "Accept"), "b_decline": ("거절", "Decline"),
    "b_cancel": ("요청 취소", "Cancel"), "b_cancel_yes": ("취소하기", "Cancel it"),
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
}
STATE_LABEL = {"REQUESTED": ("요청됨", "requested"), "ACCEPTED": ("결제 대기", "awaiting payment"),
               "PAID": ("결제 완료", "paid"), "IN_USE": ("대여중", "in use"), "OVERDUE": ("연체", "overdue"),
               "RETURNED": ("반납 확인 중", "returned"), "CLAIMED": ("파손 청구", "claim"),
               "DISPUTED": ("운영자 검토", "in dispute"), "SETTLED": ("정산 완료", "settled"),
               "DECLINED": ("거절됨", "declined"), "CANCELLED": ("취소됨", "cancelled"), "EXPIRED": ("만료", "expired")}


def t(key: str, locale: str = "ko", **params: Any) -> str:
    ko, en = T[key]
    return fill(en if locale == "en" else ko, locale, params)


class RentalDesk:
    def __init__(self, engine: BotEngine) -> None:
        self.engine = engine
        self.market = engine.market
        self.rentals = engine.market.rentals

    async def _say(self, room_id: int, text: str, **body: Any) -> Sent:
        return await self.engine._say(room_id, text, **body)

    async def _button(self, user_id: int, room_id: int, label: str, action: str, payload: dict[str, Any]) -> dict[str, str]:
        token = await self.engine.buttons.issue(user_id, room_id, action, payload, single_use=True)
        return {"label": label, "token": token}

    def _rules(self) -> dict[str, int]:
        """The configured hours and percentages the texts name (never written into the texts themselves)."""
        r = self.rentals.rules
        return {"free_h": r.free_cancel_s // 3600, "percent": r.late_cancel_percent, "claim_h": r.claim_window_s // 3600,
                "confirm_h": r.return_confirm_s // 3600}

    async def _room_locale(self, c: Contract) -> str:
        """Korean unless both people chose English."""
        rows = await self.market.db.fetchall("SELECT locale FROM users WHERE id IN (%s, %s)",
                                             (c.owner_id, c.borrower_id))
        return "en" if rows and all(r["locale"] == "en" for r in rows) else "ko"

    # -- commands ----------------------------------------------------------------------------------
    async def rent(self, room_id: int, user_id: int, locale: str, item_id: int | None, text: str) -> None:
        room_item = await self._room_item(room_id, user_id)
        if item_id is None:
            item_id = room_item
        if item_id is None:
            await self._say(room_id, t("need_item", locale))
            return
        reading = read_dates(text, self.rentals.clock.today())
        if reading is None:
            await self._say(room_id, t("bad_dates", locale, item=item_id),
                            quick_replies=[f"/대여 {item_id} 내일부터 3일", f"/대여 {item_id} 이번 주말"])
            return
        if reading.doubt:
            button = await self._button(user_id, room_id, t("yes_dates", locale), "r_dates",
                                        {"item": item_id, "start": reading.start.isoformat(),
                                         "end": reading.end.isoformat()})
            await self._say(room_id, t("confirm_dates", locale, reading=describe(reading, locale),
                                       why=t(reading.doubt, locale)), buttons=[button])
            return
        await self.request(room_id, user_id, locale, item_id, reading)

    async def request(self, room_id: int, user_id: int, locale: str, item_id: int, reading: DateReading) -> None:
        try:
            c, created = await self.rentals.request(user_id, item_id, reading.start, reading.end)
        except DatesTaken as e:
            buttons = [await self._button(user_id, room_id, describe(DateReading(s, en), locale), "r_dates",
                                          {"item": item_id, "start": s.isoformat(), "end": en.isoformat()})
                       for s, en in e.free]
            await self._say(room_id, t("taken" if buttons else "taken_none", locale), buttons=buttons)
            return
        if created:
            await self.engine.outlet.announce_room(c.room_id, [c.owner_id, c.borrower_id])
        if c.room_id != room_id:
            title = await self.market.db.fetchval("SELECT title FROM items WHERE id = %s", (c.item_id,))
            await self._say(room_id, t("request_sent", locale, title=title))

    async def pay(self, room_id: int, user_id: int, locale: str, arg: str | None) -> None:
        if arg == "link":
            await self._link_prompt(room_id, user_id, locale, "link_first")
            return
        c = await self.rentals.in_room(room_id)
        if c is None or c.state != "ACCEPTED" or c.borrower_id != user_id:
            await self._say(room_id, t("nothing_to_pay", locale), audience=user_id)
            return
        await self._pay(room_id, user_id, locale, c.id)

    async def return_(self, room_id: int, user_id: int, locale: str) -> None:
        c = await self.rentals.in_room(room_id)
        if c is None or c.role(user_id) is None:
            await self._say(room_id, t("no_contract", locale), audience=user_id)
            return
        if c.state == "RETURNED" and c.role(user_id) == "owner":
            await self.on_event({"kind": "returned", "contract_id": c.id, "data": {"late_fee": c.late_fee},
                                 "id": None})
            return
        await self.rentals.mark_returned(user_id, c.id)

    async def cancel(self, room_id: int, user_id: int, locale: str) -> bool:
        """Offer to cancel the room's rental; False when there is nothing to cancel here."""
        c = await self.rentals.in_room(room_id)
        if c is None or c.role(user_id) is None or c.state not in ("REQUESTED", "ACCEPTED", "PAID"):
            return False
        terms = self.rentals.cancel_terms(c, c.role(user_id) or "")
        if c.state != "PAID":
            words = t("cancel_unpaid", locale)
        elif terms["free"]:
            words = t("cancel_free", locale)
        else:
            words = t("cancel_late", locale, refund=terms["refund"], owner=terms["owner_part"], **self._rules())
        button = await self._button(user_id, room_id, t("b_cancel_yes", locale), "r_cancel", {"c": c.id})
        await self._say(room_id, t("cancel_confirm", locale, terms=words), buttons=[button])
        return True

    async def extend(self, room_id: int, user_id: int, locale: str, text: str) -> None:
        c = await self.rentals.in_room(room_id)
        if c is None or c.borrower_id != user_id or c.state not in ("IN_USE", "OVERDUE"):
            await self._say(room_id, t("no_contract", locale), audience=user_id)
            return
        reading = read_dates(text, self.rentals.clock.today())
        if reading is None:
            await self._say(room_id, t("ask_extension", locale))
            return
        await self.rentals.request_extension(user_id, c.id, reading.end)

    async def _room_item(self, room_id: int, user_id: int) -> int | None:
        row = await self.market.db.fetchone("SELECT kind, item_id, borrower_id FROM rooms WHERE id = %s", (room_id,))
        if row and row["kind"] == "deal" and row["borrower_id"] == user_id:
            return int(row["item_id"])
        return None

    async def _pay(self, room_id: int, user_id: int, locale: str, cid: int, check: str | None = None) -> None:
        try:
            await self.rentals.pay_now(user_id, cid, confirm=check)
        except MarketError as e:
            if e.code in ("pay.no_link", "pay.relink"):
                await self._link_prompt(room_id, user_id, locale, "link_first")
                return
            if e.code in ("pay.confirm_link", "pay.link_changed"):
                await self._confirm_first_pay(room_id, user_id, locale, await self.rentals.get(cid, user_id),
                                              changed=e.code == "pay.link_changed")
                return
            if e.code in BANK_REFUSALS:
                return  # the bank's refusal is announced as the payment_failed event, with a new pay button
            raise

    async def _confirm_first_pay(self, room_id: int, user_id: int, locale: str, c: Contract, *,
                                 changed: bool = False) -> None:
        """Before the first charge to a newly linked account: its bank, masked number, holder and the amount,
        to the borrower alone, with one 결제 button bound to that very account."""
        assert self.market.billipay is not None
        acct = await self.market.billipay.first_use(user_id)
        if acct is None:  # confirmed meanwhile (another device): the ordinary pay button
            button = await self._button(user_id, room_id, t("b_pay", locale, amount=c.total), "r_pay", {"c": c.id})
            await self._say(room_id, t("accepted", locale, deadline=_when(c.expires_at)), buttons=[button],
                            audience=user_id)
            return
        amounts = [[t("f_rent", locale), won(c.rent, locale)], [t("f_fee", locale), won(c.fee, locale)],
                   [t("f_deposit", locale), won(c.deposit, locale)], [t("f_total", locale), won(c.total, locale)]]
        button = await self._button(user_id, room_id, t("b_confirm_pay", locale), "r_pay",
                                    {"c": c.id, "check": acct["check"]})
        await self._account_card(room_id, user_id, locale, c, acct, amounts, button,
                                 t("confirm_pay_changed" if changed else "confirm_pay", locale))

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
        locale = await self.engine._locale(c.borrower_id)
        extra = (c.ext_rent or 0) + (c.ext_fee or 0)
        amounts = [[t("f_rent", locale), won(c.ext_rent or 0, locale)], [t("f_fee", locale), won(c.ext_fee or 0, locale)],
                   [t("f_total", locale), won(extra, locale)]]
        button = await self._button(c.borrower_id, room_id, t("b_account_ok", locale), "r_account_ok",
                                    {"c": c.id, "check": acct["check"]})
        await self._account_card(room_id, c.borrower_id, locale, c, acct, amounts, button,
                                 t("confirm_ext_account", locale))
        await self._say(room_id, t("wait_account", await self.engine._locale(c.owner_id)), audience=c.owner_id)

    async def _approve_again(self, c: Contract) -> None:
        """The borrower's account is settled: the owner alone gets the extension's approve/decline buttons
        again (if it is still waiting)."""
        if c.state not in ("IN_USE", "OVERDUE") or c.ext_end_date is None:
            return
        locale = await self.engine._locale(c.owner_id)
        buttons = [await self._button(c.owner_id, c.room_id, t(key, locale), action, {"c": c.id})
                   for key, action in (("b_ext_ok", "r_ext_ok"), ("b_ext_no", "r_ext_no"))]
        await self._say(c.room_id, t("approve_again", locale), buttons=buttons, audience=c.owner_id)

    async def _account_card(self, room_id: int, user_id: int, locale: str, c: Contract, acct: dict[str, Any],
                            amounts: list[list[str]], button: dict[str, str], text: str) -> None:
        """A private card with the linked account (bank, masked number, holder) and what it is about to pay."""
        holder = (t("f_holder_differs", locale, holder=acct["holder"]) if acct["holder_differs"]
                  else acct["holder"])
        card = {"title": t("c_confirm", locale), "subtitle": f"#{c.item_id}", "contract_id": c.id,
                "fields": [[t("f_bank", locale), acct["bank_name"]], [t("f_account", locale), acct["account"]],
                           [t("f_holder", locale), holder], *amounts]}
        if acct["holder_differs"]:
            text += "\n" + t("holder_differs", locale, holder=acct["holder"], person=acct["person"])
        await self._say(room_id, text, cards=[card], buttons=[button], audience=user_id)

    async def after_link(self, room_id: int, user_id: int, account: dict[str, Any]) -> None:
        """The bank sent the person back: say so to them alone in the room they started from and, when a
        payment was waiting for the link, show them the confirmation card to pay with; payouts that waited
        for the link go out now."""
        locale = await self.engine._locale(user_id)
        await self._say(room_id, t("linked", locale, bank=account["bank_name"], account=account["account"]),
                        audience=user_id)
        c = await self.rentals.in_room(room_id)
        if c is not None and c.state == "ACCEPTED" and c.borrower_id == user_id:
            await self._confirm_first_pay(room_id, user_id, locale, c)
        elif c is not None and c.borrower_id == user_id and c.ext_end_date is not None:
            await self._extension_waits_for_account(room_id, c.id)  # an extension waited for this link
        await self.rentals.payouts_for(user_id)

    async def _link_prompt(self, room_id: int, user_id: int, locale: str, key: str, **params: Any) -> None:
        """The bank-link button, for the person alone (the other member never sees it)."""
        if self.market.billipay is None:
            await self._say(room_id, render("pay.not_configured", locale), audience=user_id)
            return
        ticket = await self.market.billipay.ticket(user_id, room_id)
        await self._say(room_id, t(key, locale, **params), audience=user_id,
                        buttons=[{"label": t("link_button", locale), "url": f"/billipay/link?ticket={ticket}"}])

    # -- buttons -----------------------------------------------------------------------------------
    async def press(self, room_id: int, user_id: int, locale: str, action: str, payload: dict[str, Any]) -> str | None:
        cid = payload.get("c")
        r = self.rentals
        if action == "r_request":
            await self.engine.flows.save(room_id, user_id, FlowRecord(PROMPT, "dates", {"item": payload["item"]}))
            await self._say(room_id, t("ask_dates", locale),
                            quick_replies=["내일부터 3일", "이번 주말", "다음 주말"])
        elif action == "r_dates":
            reading = DateReading(date.fromisoformat(payload["start"]), date.fromisoformat(payload["end"]))
            await self.request(room_id, user_id, locale, int(payload["item"]), reading)
        elif action == "r_accept":
            await r.accept(user_id, cid)
        elif action == "r_decline":
            await r.decline(user_id, cid)
        elif action == "r_cancel_ask":
            if not await self.cancel(room_id, user_id, locale):
                await self._say(room_id, render("rental.wrong_state", locale))
        elif action == "r_cancel":
            await r.cancel(user_id, cid)
        elif action == "r_pay":
            check = payload.get("check")
            await self._pay(room_id, user_id, locale, int(cid), check if isinstance(check, str) else None)
        elif action == "r_hand":
            await r.hand_over(user_id, cid)
        elif action == "r_return":
            await r.mark_returned(user_id, cid)
        elif action == "r_ok":
            await r.confirm_ok(user_id, cid)
        elif action == "r_damage":
            c = await r.get(cid, user_id)
            if c.owner_id != user_id:
                return "button_not_yours"
            if c.state != "RETURNED":
                await self._say(room_id, render("rental.wrong_state", locale))
                return None
            await self.engine.flows.save(room_id, user_id, FlowRecord(PROMPT, "claim_amount", {"c": c.id}))
            await self._say(room_id, t("ask_claim_amount", locale, max=r.claim_limit(c)))
        elif action == "r_lost":
            c = await r.get(cid, user_id)
            button = await self._button(user_id, room_id, t("b_lost_yes", locale), "r_lost_yes", {"c": cid})
            await self._say(room_id, t("lost_confirm", locale, deposit=c.deposit), buttons=[button],
                            audience=user_id)
        elif action == "r_not_back":
            await r.object_return(user_id, cid)
        elif action == "r_hand_no":
            await r.object_handover(user_id, cid)
        elif action == "r_lost_yes":
            await r.report_lost(user_id, cid)
        elif action == "r_claim_ok":
            await r.accept_claim(user_id, cid)
        elif action == "r_dispute":
            await r.dispute(user_id, cid)
        elif action == "r_extend":
            await self.engine.flows.save(room_id, user_id, FlowRecord(PROMPT, "extension", {"c": cid}))
            await self._say(room_id, t("ask_extension", locale))
        elif action == "r_ext_ok":
            try:
                await r.approve_extension(user_id, cid)
            except MarketError as e:
                if e.code == "pay.confirm_link":
                    await self._extension_waits_for_account(room_id, int(cid))
                elif e.code not in BANK_REFUSALS | {"pay.no_link", "pay.relink", "pay.link_changed"}:
                    raise  # (a refusal is announced as extension_failed, to both)
        elif action == "r_account_ok":
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
            await self._say(room_id, t("account_checked", locale), audience=user_id)
            await self._approve_again(await r.get(cid, user_id))
        elif action == "r_ext_no":
            await r.decline_extension(user_id, cid)
        elif action == "r_review":
            await self.engine.flows.save(room_id, user_id, FlowRecord(PROMPT, "review", dict(payload)))
            await self._say(room_id, t("review_words", locale, stars=payload["stars"]))
        else:
            return "button_invalid"
        return None

    async def prompt(self, room_id: int, user_id: int, locale: str, record: FlowRecord, text: str) -> bool:
        """A typed answer to one of the desk's questions; returns whether the prompt continues."""
        if record.state == "dates":
            reading = read_dates(text, self.rentals.clock.today())
            if reading is None:
                await self._say(room_id, t("ask_dates", locale))
                return True
            await self.engine.flows.clear(room_id, user_id)
            await self.rent(room_id, user_id, locale, int(record.data["item"]), text)
            return False
        if record.state == "extension":
            reading = read_dates(text, self.rentals.clock.today())
            if reading is None:
                await self._say(room_id, t("ask_extension", locale))
                return True
            await self.engine.flows.clear(room_id, user_id)
            await self.rentals.request_extension(user_id, record.data["c"], reading.end)
            return False
        if record.state == "review":
            await self.engine.flows.clear(room_id, user_id)
            words = "" if text.strip() in ("없음", "-", "none") else text
            d = record.data
            await self.market.reviews.write(user_id, d["c"], d["about"], int(d["stars"]), words)
            await self._say(room_id, t("review_saved", locale))
            if d["about"] == "owner":
                await self._ask_review(await self.rentals.get(d["c"]), user_id, "item", locale)
            return False
        c = await self.rentals.get(record.data["c"], user_id)
        limit = self.rentals.claim_limit(c)
        if record.state == "claim_amount":
            amount = parse_won(text)
            if amount is None or not 1 <= amount <= limit:
                await self._say(room_id, t("bad_amount", locale, max=limit), audience=user_id)
                return True
            record.data["amount"] = amount
            record.state = "claim_note"
            await self.engine.flows.save(room_id, user_id, record)
            await self._say(room_id, t("ask_claim_note", locale))
            return True
        await self.engine.flows.clear(room_id, user_id)
        await self.rentals.claim(user_id, c.id, int(record.data["amount"]), text)
        return False

    # -- announcing events -------------------------------------------------------------------------
    async def on_event(self, event: dict[str, Any]) -> None:
        c = await self.rentals.get(event["contract_id"])
        locale = await self._room_locale(c)
        kind, data = event["kind"], event.get("data") or {}
        o, b = c.owner_id, c.borrower_id
        room = c.room_id
        buttons: list[dict[str, str]] = []

        async def btn(user: int, key: str, action: str, **params: Any) -> None:
            buttons.append(await self._button(user, room, t(key, locale, **params), action, {"c": c.id}))

        cards: list[dict[str, Any]] = []
        text = ""
        if kind == "requested":
            name = await self._nickname(b)
            text = t("request", locale, name=name, deadline=_when(c.expires_at))
            cards = [await self._contract_card(c, locale)]
            await btn(o, "b_accept", "r_accept")
            await btn(o, "b_decline", "r_decline")
            await btn(b, "b_cancel", "r_cancel")
        elif kind == "accepted":
            text = t("accepted", locale, deadline=_when(c.expires_at))
            cards = [await self._contract_card(c, locale)]
            await btn(b, "b_pay", "r_pay", amount=c.total)
            await btn(b, "b_cancel", "r_cancel_ask")
        elif kind == "declined":
            text = t("declined", locale)
        elif kind == "expired":
            text = t("expired_request" if event.get("from_state") == "REQUESTED" else "expired_payment", locale)
        elif kind == "cancelled":
            if data.get("refund"):
                extra = "" if data.get("free") else t("late_cancel_extra", locale, **self._rules(), owner=data["owner_part"],
                                                      fee=data["fee_part"])
                text = t("cancelled_refund", locale, refund=data["refund"], extra=extra)
            else:
                text = t("cancelled", locale)
        elif kind in ("payment_failed", "extension_failed"):
            # The bank's reason (잔액부족, a closed account …) is the borrower's alone; the owner hears the outcome.
            mine = await self.engine._locale(b)
            reason = render(data.get("reason", "pay.declined"), mine)
            if kind == "payment_failed" and c.state == "ACCEPTED":
                buttons.append(await self._button(b, room, t("b_pay", mine, amount=c.total), "r_pay", {"c": c.id}))
            sent = await self._say(room, t(kind, mine, reason=reason), buttons=buttons, audience=b,
                                   client_msg_id=_cmid(event))
            if sent.duplicate:
                return
            await self._say(room, t(f"{kind}_other", await self.engine._locale(o)), audience=o,
                            client_msg_id=f"{_cmid(event)}o" if event.get("id") else None)
            if kind == "extension_failed" and data.get("reason") in ("pay.relink", "pay.no_link"):
                await self._link_prompt(room, b, mine, "link_first")  # the borrower's way out
            return
        elif kind == "paid":
            text = t("paid", locale, amount=data.get("amount", c.total))
            await btn(o, "b_handed", "r_hand")
            await btn(b, "b_received", "r_hand")
            await btn(b, "b_cancel", "r_cancel_ask")
        elif kind in ("handed", "received"):
            text = t(kind, locale)
            if c.state == "PAID":
                await btn(b if kind == "handed" else o, "b_received" if kind == "handed" else "b_handed", "r_hand")
                await btn(b if kind == "handed" else o, "b_not_received" if kind == "handed" else "b_not_handed",
                          "r_hand_no")
        elif kind == "handover_objected":
            text = t(f"handover_objected_{data.get('by', 'borrower')}", locale) + "\n" + t("operator_checking", locale)
        elif kind == "handover_resolved":
            note = data.get("note", "")
            if data.get("handed") is None:
                text = t("handover_resolved_not_yet", locale, note=note)
                if c.state == "PAID":
                    await btn(o, "b_handed", "r_hand")
                    await btn(b, "b_received", "r_hand")
            elif data["handed"]:
                text = t("handover_resolved_yes", locale, end=day_label(c.end_date, locale), note=note)
                await self._in_use_buttons(c, btn)
            else:
                text = t("handover_resolved_no", locale, refund=data.get("refund", 0), note=note)
        elif kind == "return_declared":
            late = t("late_note", locale, days=data.get("late_days", 0), fee=data["late_fee"]) if data.get("late_fee") else ""
            text = t("return_declared", locale, late=late, **self._rules())
            if c.state in ("IN_USE", "OVERDUE") and c.return_declared_at is not None:
                await btn(o, "b_got_back", "r_return")
                await btn(o, "b_not_back", "r_not_back")
        elif kind == "return_objected":
            text = t("return_objected", locale)
            await self._in_use_buttons(c, btn)
        elif kind == "in_use":
            text = t("in_use", locale, end=day_label(c.end_date, locale))
            await self._in_use_buttons(c, btn)
        elif kind in ("starts_tomorrow", "due_tomorrow", "due_today"):
            text = t(kind, locale, start=day_label(c.start_date, locale), end=day_label(c.end_date, locale))
            if kind != "starts_tomorrow":
                await self._in_use_buttons(c, btn)
        elif kind == "overdue":
            text = t("overdue", locale, daily=c.price_per_day)
            await self._in_use_buttons(c, btn)
        elif kind == "still_overdue":
            text = t("still_overdue", locale, days=data.get("late_days", 0), fee=data.get("late_fee", 0))
            await self._in_use_buttons(c, btn)
        elif kind == "extension_requested":
            text = t("extension_requested", locale, end=day_label(date.fromisoformat(data["end_date"]), locale),
                     days=data["days"], amount=data["rent"] + data["fee"])
            await btn(o, "b_ext_ok", "r_ext_ok")
            await btn(o, "b_ext_no", "r_ext_no")
        elif kind == "extended":
            text = t("extended", locale, end=day_label(c.end_date, locale), amount=data.get("amount", 0))
            if data.get("late_fee_removed"):
                text += t("late_fee_removed", locale, fee=data["late_fee_removed"])
            await self._in_use_buttons(c, btn)
        elif kind == "extension_declined":
            text = t("extension_declined", locale)
        elif kind == "returned":
            late = t("late_note", locale, days=data.get("late_days", 0), fee=data["late_fee"]) if data.get("late_fee") else ""
            text = t("returned", locale, late=late, **self._rules())
            if data.get("automatic"):
                text = t("returned_auto", locale, **self._rules()) + "\n" + text
            if c.state == "RETURNED":
                await btn(o, "b_ok", "r_ok")
                await btn(o, "b_damage", "r_damage")
        elif kind == "claimed":
            if data.get("claim_kind") == "lost":
                late = t("late_note", locale, days=data.get("late_days", 0), fee=data["late_fee"]) if data.get(
                    "late_fee") else ""
                text = t("claimed_lost_auto" if data.get("automatic") else "claimed_lost", locale,
                         amount=data.get("deposit", c.deposit), late=late, days=self.rentals.rules.lost_after_days,
                         **self._rules())
            else:
                photos = len([p for p in await self.rentals.photos(c.id) if p["stage"] == "claim"])
                text = t("claimed", locale, amount=data["amount"], note=data.get("note") or "-", photos=photos)
            if data.get("rent_paid"):
                text += "\n" + t("rent_paid_now", locale, amount=data["rent_paid"])
            if c.state == "CLAIMED":
                await btn(b, "b_claim_ok", "r_claim_ok")
                await btn(b, "b_dispute", "r_dispute")
        elif kind == "no_show":
            text = t("no_show", locale, refund=data.get("refund", 0))
        elif kind == "disputed" and data.get("unanswered"):
            text = t("disputed_unanswered", locale, **self._rules()) + "\n" + t("operator_checking", locale)
        elif kind == "disputed":
            text = t("disputed", locale) + "\n" + t("operator_checking", locale)
        elif kind == "payout_held":
            to = o if data.get("to") == "owner" else b
            other = b if to == o else o
            mine = await self.engine._locale(to)
            sent = await self._say(room, t("payout_held", mine, amount=data.get("amount", 0),
                                           reason=render(data.get("reason", "pay.declined"), mine)),
                                   audience=to, client_msg_id=_cmid(event))
            if not sent.duplicate:
                await self._say(room, t("payout_held_other", await self.engine._locale(other)), audience=other,
                                client_msg_id=f"{_cmid(event)}o" if event.get("id") else None)
            return
        elif kind in ("settled", "claim_accepted", "resolved", "lost"):
            lead = {"claim_accepted": t("claim_accepted", locale), "lost": t("lost", locale),
                    "resolved": t("resolved", locale, amount=data.get("amount", 0), note=data.get("note", "")),
                    "settled": t("settled_auto", locale, **self._rules()) if data.get("automatic") else ""}[kind]
            parts = t("settled_parts", locale, rent=c.rent + c.extra_rent,
                      late=t("settled_late", locale, fee=data["late_fee"]) if data.get("late_fee") else "",
                      claim=t("settled_claim", locale, claim=data["claim"]) if data.get("claim") else "")
            text = (lead + "\n" if lead else "") + t("settled", locale, owner=data.get("owner", 0), owner_parts=parts,
                                                     borrower=data.get("borrower", 0), fees=data.get("fees", 0))
            sent = await self.engine._say(room, text, client_msg_id=_cmid(event))
            if sent.duplicate:
                return
            for who, amount in ((o, data.get("owner", 0)), (b, data.get("borrower", 0))):
                if amount and self.market.billipay and await self.market.billipay.account(who) is None:
                    await self._link_prompt(room, who, locale, "link_payout", name=await self._nickname(who))
            await self._ask_review(c, b, "owner", locale)
            await self._ask_review(c, o, "borrower", locale)
            return
        elif kind == "paid_out":
            text = t("paid_out_owner" if data.get("to") == "owner" else "paid_out_borrower", locale,
                     amount=data.get("amount", 0))
        elif kind == "late_payment_refunded":
            key = {"rental.started": "late_payment_refunded_started",
                   "rental.dates_taken": "late_payment_refunded_taken"}.get(data.get("reason", ""), "late_payment_refunded")
            text = t(key, locale, amount=data.get("amount", 0))
        else:
            return
        await self._say(room, text, cards=cards, buttons=buttons, client_msg_id=_cmid(event))

    async def _ask_review(self, c: Contract, user_id: int, about: str, locale: str) -> None:
        """Stars as buttons for one person: about the other person, or (the borrower, after that) the item."""
        buttons = [await self._button(user_id, c.room_id, "★" * n, "r_review",
                                      {"c": c.id, "about": about, "stars": n}) for n in range(5, 0, -1)]
        if about == "item":
            text = t("review_ask_item", locale)
        else:
            other = c.owner_id if about == "owner" else c.borrower_id
            text = t("review_ask_borrower" if about == "owner" else "review_ask_owner", locale,
                     name=await self._nickname(user_id), other=await self._nickname(other))
        await self._say(c.room_id, text, buttons=buttons)

    async def _in_use_buttons(self, c: Contract, btn: Any) -> None:
        if c.state in ("IN_USE", "OVERDUE"):
            await btn(c.borrower_id, "b_returned", "r_return")
            await btn(c.borrower_id, "b_extend", "r_extend")
            await btn(c.owner_id, "b_got_back", "r_return")
            await btn(c.owner_id, "b_lost", "r_lost")

    async def _contract_card(self, c: Contract, locale: str) -> dict[str, Any]:
        item = await self.market.db.fetchone(
            "SELECT i.title, (SELECT p.thumb_key FROM item_photos p WHERE p.item_id = i.id ORDER BY p.position LIMIT 1)"
            " AS thumb FROM items i WHERE i.id = %s", (c.item_id,))
        reading = DateReading(c.start_date, c.end_date)
        return {"title": f"#{c.item_id} {item['title'] if item else ''}", "subtitle": describe(reading, locale),
                "image": media_url(item["thumb"]) if item else None, "contract_id": c.id,
                "fields": [[t("f_dates", locale), describe(reading, locale)], [t("f_days", locale), str(c.days)],
                           [t("f_rent", locale), won(c.rent, locale)], [t("f_deposit", locale), won(c.deposit, locale)],
                           [t("f_fee", locale), won(c.fee, locale)], [t("f_total", locale), won(c.total, locale)],
                           [t("f_state", locale), STATE_LABEL[c.state][locale == "en"]]]}

    async def _nickname(self, user_id: int) -> str:
        return str(await self.market.db.fetchval("SELECT nickname FROM users WHERE id = %s", (user_id,)) or "")


def _when(at: Any) -> str:
    """A UTC deadline as Seoul time: "11월 28일 14:05"."""
    if at is None:
        return "-"
    local = at + timedelta(hours=9)
    return f"{local.month}월 {local.day}일 {local.hour:02d}:{local.minute:02d}"


def _cmid(event: dict[str, Any]) -> str | None:
    return f"ev{event['id']}" if event.get("id") else None
