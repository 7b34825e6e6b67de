"""The catalogue of user-facing words: Korean first, English second, each under a stable key.

Templates use ``{name}`` for a parameter and ``{name|을}`` to append the right particle (을/를, 이/가,
은/는, 과/와, 으로/로) after a Korean word; a ``timedelta`` reads as "30초" / "5분". Nothing else in the code
assembles sentences.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import timedelta
from typing import Any

LOCALES = ("ko", "en")

FIELD_LABELS: dict[str, tuple[str, str]] = {
    "email": ("이메일", "e-mail"),
    "nickname": ("닉네임", "nickname"),
    "password": ("비밀번호", "password"),
    "current": ("지금 비밀번호", "current password"),
    "new": ("새 비밀번호", "new password"),
    "token": ("재설정 링크", "reset link"),
    "confirm": ("탈퇴 확인", "confirmation"),
    "title": ("제목", "title"),
    "description": ("설명", "description"),
    "category_id": ("카테고리", "category"),
    "category": ("카테고리", "category"),
    "price_per_day": ("하루 대여료", "price per day"),
    "deposit": ("보증금", "deposit"),
    "condition": ("물건 상태", "condition"),
    "lat": ("위도", "latitude"),
    "lng": ("경도", "longitude"),
    "place_name": ("동네 이름", "place name"),
    "available_from": ("대여 가능 시작일", "available from"),
    "available_until": ("대여 가능 종료일", "available until"),
    "radius_m": ("반경", "radius"),
    "price_min": ("최소 대여료", "minimum price"),
    "price_max": ("최대 대여료", "maximum price"),
    "deposit_min": ("최소 보증금", "minimum deposit"),
    "deposit_max": ("최대 보증금", "maximum deposit"),
    "status": ("상태", "status"),
    "limit": ("개수", "limit"),
    "cursor": ("페이지 정보", "page cursor"),
    "order": ("사진 순서", "photo order"),
    "locale": ("언어", "language"),
    "photo": ("사진", "photo"),
    "body": ("요청 본문", "request body"),
    "text": ("메시지", "message"),
    "seq": ("메시지 번호", "message number"),
    "before_seq": ("메시지 번호", "message number"),
    "after_seq": ("메시지 번호", "message number"),
    "client_msg_id": ("메시지 식별자", "message id"),
    "dates": ("대여 날짜", "rental dates"),
    "amount": ("금액", "amount"),
    "note": ("메모", "note"),
    "stars": ("별점", "stars"),
    "about": ("리뷰 대상", "review subject"),
    "upto": ("알림 번호", "notification id"),
}

CATALOGUE: dict[str, tuple[str, str]] = {
    # generic input problems
    "input.required": ("{label|을} 입력해 주세요.", "Please enter the {label}."),
    "input.not_text": ("{label|은} 글자로 입력해 주세요.", "The {label} must be text."),
    "input.not_integer": ("{label|은} 숫자(정수)로 입력해 주세요.", "The {label} must be a whole number."),
    "input.not_number": ("{label|은} 숫자로 입력해 주세요.", "The {label} must be a number."),
    "input.text_length": ("{label|은} {min}~{max}자로 입력해 주세요.",
                          "The {label} must be {min} to {max} characters long."),
    "input.text_too_long": ("{label|은} {max}자까지 쓸 수 있어요.", "The {label} can be at most {max} characters."),
    "input.number_range": ("{label|은} {min}부터 {max}까지만 입력할 수 있어요.",
                           "The {label} must be between {min} and {max}."),
    "input.money_range": ("{label|은} {min}원부터 {max}원까지만 입력할 수 있어요.",
                          "The {label} must be between {min} and {max} won."),
    "input.bad_date": ("{label|은} 2026-12-24처럼 날짜로 입력해 주세요.",
                       "The {label} must be a date like 2026-12-24."),
    "input.date_order": ("대여 가능 종료일은 시작일보다 빠를 수 없어요.",
                         "The end date cannot be before the start date."),
    "input.range_order": ("{label|은} 최솟값이 최댓값보다 클 수 없어요.",
                          "The minimum {label} cannot be larger than the maximum."),
    "input.choice": ("{label|은} {choices} 중에서 골라 주세요.", "The {label} must be one of: {choices}."),
    "input.unknown_field": ("알 수 없는 항목이 있어요: {names}", "Unknown fields: {names}"),
    "input.not_object": ("요청 본문은 JSON 객체여야 해요.", "The request body must be a JSON object."),
    "input.bad_json": ("요청 본문을 JSON으로 읽을 수 없어요.", "The request body is not valid JSON."),
    "input.json_only": ("요청 본문은 JSON(Content-Type: application/json)으로 보내 주세요.",
                        "Send the request body as JSON (Content-Type: application/json)."),
    "input.control_chars": ("{label}에 쓸 수 없는 문자가 있어요.", "The {label} contains characters that are not allowed."),
    "input.outside_korea": ("위치는 대한민국 안이어야 해요. 위도 33~38.7, 경도 124.5~132 사이로 알려 주세요.",
                            "The location must be inside South Korea (lat 33–38.7, lng 124.5–132)."),
    "input.bad_cursor": ("페이지 정보가 올바르지 않아요. 처음부터 다시 검색해 주세요.",
                         "The page cursor is invalid; please search again from the start."),
    "search.bad_query": ("검색어는 글자로 입력해 주세요.", "The search query must be text."),
    "input.nothing_to_change": ("바꿀 항목이 없어요.", "There is nothing to change."),
    # accounts
    "account.bad_email": ("이메일 주소 형식이 올바르지 않아요.", "That e-mail address does not look right."),
    "account.email_taken": ("이미 가입된 이메일이에요. 로그인해 주세요.",
                            "This e-mail is already registered; please log in."),
    "account.nickname_taken": ("이미 쓰고 있는 닉네임이에요. 다른 닉네임을 골라 주세요.",
                               "That nickname is taken; please choose another."),
    "account.bad_nickname": ("닉네임은 2~20자의 한글, 영문, 숫자, 밑줄(_)만 쓸 수 있어요.",
                             "A nickname is 2–20 letters, digits or underscores."),
    "account.reserved_nickname": ("빌리마켓이나 빌리(봇), 알림, 운영진으로 보일 수 있는 닉네임은 쓸 수 없어요. "
                                  "다른 닉네임을 골라 주세요.",
                                  "Nicknames that could pass for Billi Market, its bot, its notices or its staff "
                                  "cannot be used; please choose another."),
    "account.weak_password": ("비밀번호는 {min}자부터 {max}자까지 쓸 수 있어요.",
                              "A password must be {min} to {max} characters long."),
    "account.common_password": ("너무 흔한 비밀번호라서 쓸 수 없어요. 남이 짐작하기 어려운 비밀번호를 골라 주세요. "
                                "짧은 단어 몇 개를 이어 쓰면 기억하기도 쉬워요.",
                                "That password is too common; please choose one others cannot guess. A few words "
                                "strung together are easy to remember."),
    "account.password_is_name": ("이메일 아이디나 닉네임을 비밀번호로 쓸 수 없어요.",
                                 "Your e-mail name or nickname cannot be your password."),
    "account.bad_login": ("이메일 또는 비밀번호가 맞지 않아요.", "Wrong e-mail or password."),
    "account.login_throttled": ("로그인 시도가 너무 많아요. {wait} 뒤 다시 시도해 주세요.",
                                "Too many login attempts. Try again in {wait}."),
    "account.busy": ("지금 로그인하거나 가입하는 분이 많아요. 잠시 뒤 다시 시도해 주세요.",
                     "Many people are logging in or signing up right now; please try again in a moment."),
    "account.login_required": ("로그인이 필요해요.", "Please log in first."),
    "account.not_found": ("사용자를 찾을 수 없어요.", "User not found."),
    "account.logged_out_everywhere": ("모든 기기에서 로그아웃했어요.", "You have been logged out on every device."),
    "account.wrong_password": ("비밀번호가 맞지 않아요.", "That password is not right."),
    "account.password_locked": ("비밀번호를 너무 많이 틀렸어요. {minutes}분 뒤에 다시 시도해 주세요.",
                                "Too many wrong passwords. Try again in {minutes} minutes."),
    "account.no_password": ("비밀번호 없이 네이버로 로그인하는 계정이라 바꿀 비밀번호가 없어요.",
                            "This account logs in with Naver and has no password to change."),
    "account.password_changed": ("비밀번호를 바꿨어요. 다른 기기에서는 모두 로그아웃됐어요.",
                                 "Your password has been changed; every other device has been logged out."),
    "account.reset_sent": ("입력한 주소로 가입한 계정이 있다면 비밀번호 재설정 링크를 보냈어요. "
                           "30분 안에 메일의 링크를 열어 주세요.",
                           "If an account uses that address, a password reset link is on its way. Open it within "
                           "30 minutes."),
    "limit.password_reset": ("이 네트워크에서 비밀번호 재설정을 너무 많이 요청했어요. {wait} 뒤 다시 시도해 주세요.",
                             "Too many password resets asked from this network. Try again in {wait}."),
    "account.reset_too_many": ("이 주소로는 비밀번호 재설정 메일을 더 보낼 수 없어요. "
                               "{minutes}분 뒤에 다시 시도해 주세요.",
                               "No more reset mails can be sent to that address now. Try again in {minutes} "
                               "minutes."),
    "account.reset_invalid": ("비밀번호 재설정 링크가 만료됐거나 이미 쓰였어요. "
                              "비밀번호 찾기에서 새 링크를 받아 주세요.",
                              "This reset link has expired or was already used. Ask for a new link."),
    "account.open_rental": ("진행 중인 대여가 있어서 탈퇴할 수 없어요. 대여가 끝나면(정산 완료, 거절, 취소) 다시 "
                            "시도해 주세요.",
                            "You cannot leave while a rental is open. Try again once it is over (settled, declined "
                            "or cancelled)."),
    "account.money_open": ("아직 정산 중인 돈이 있어서 탈퇴할 수 없어요. 받을 돈이 모두 계좌로 들어간 뒤에 다시 시도해 "
                           "주세요. 계좌를 연결해야 받을 수 있는 돈이라면 먼저 빌리페이 계좌를 연결해 주세요.",
                           "Money is still being settled for you. Try again once all of it has reached your bank "
                           "account; if it waits for an account, link one first."),
    "account.confirm_delete": ("탈퇴하려면 확인이 필요해요.", "Please confirm that you want to leave."),
    "account.deleted": ("탈퇴했어요. 그동안 빌리마켓을 이용해 주셔서 고마워요.",
                        "Your account has been deleted. Thank you for being a neighbour."),
    # mail (a mail carries both languages, Korean first)
    "mail.reset_subject": ("[빌리마켓] 비밀번호 재설정 링크", "[Billi Market] Password reset link"),
    "mail.reset_body": ("안녕하세요, {nickname}님.\n\n아래 링크를 열어 새 비밀번호를 정해 주세요. 링크는 30분 동안, "
                        "한 번만 쓸 수 있어요.\n\n{link}\n\n비밀번호 재설정을 요청하지 않았다면 이 메일은 무시해 "
                        "주세요. 비밀번호는 그대로예요.",
                        "Hello {nickname},\n\nOpen the link above to choose a new password. It works once, within "
                        "30 minutes. If you did not ask for it, ignore this mail: your password stays as it is."),
    # categories and items
    "category.not_found": ("없는 카테고리예요. 카테고리 목록에서 골라 주세요.",
                           "Unknown category; please pick one from the list."),
    "category.not_leaf": ("카테고리는 가장 작은 분류(소분류)까지 골라 주세요.",
                          "Please choose the most specific (third-level) category."),
    "item.not_found": ("물건을 찾을 수 없어요. 삭제되었거나 없는 번호예요.",
                       "Item not found; it was deleted or never existed."),
    "item.not_owner": ("내 물건만 고치거나 지울 수 있어요.", "You can only change your own items."),
    "item.bad_status": ("물건 상태는 대여 가능 또는 숨김으로만 바꿀 수 있어요.",
                        "An item can only be set to available or hidden."),
    # photos
    "photo.too_large": ("사진은 {max_mb}MB까지 올릴 수 있어요.", "Photos can be at most {max_mb} MB."),
    "photo.not_image": ("이미지 파일(JPEG, PNG, WebP, GIF)만 올릴 수 있어요.",
                        "Only image files (JPEG, PNG, WebP, GIF) can be uploaded."),
    "photo.too_many_pixels": ("사진이 너무 커요 (최대 {man_pixels}만 화소). 더 작게 줄여서 올려 주세요.",
                              "The photo has too many pixels (at most {megapixels} megapixels); please upload a "
                              "smaller one."),
    "photo.too_fast": ("사진을 너무 자주 올리고 있어요. {retry_after}초 뒤에 다시 올려 주세요.",
                       "You are uploading photos too often; please try again in {retry_after} seconds."),
    "photo.busy": ("지금 사진을 올리는 분이 많아요. 잠시 뒤에 다시 올려 주세요.",
                   "Many photos are being uploaded right now; please try again in a moment."),
    "photo.too_many": ("사진은 물건당 {max}장까지 올릴 수 있어요.", "An item can have at most {max} photos."),
    "upload.busy": ("사진을 올리는 중이에요. 지금 올리는 사진이 끝난 뒤에 다시 올려 주세요.",
                    "A photo of yours is still uploading; send the next one once it is done."),
    "photo.none": ("올릴 사진을 골라 주세요.", "Please choose a photo to upload."),
    "photo.bad_form": ("보낸 사진을 읽을 수 없어요. 사진을 다시 골라 올려 주세요.",
                       "The upload could not be read. Please choose the photo again."),
    "photo.not_found": ("사진을 찾을 수 없어요.", "Photo not found."),
    "photo.bad_order": ("사진 순서에는 이 물건의 사진 번호를 빠짐없이 한 번씩 넣어 주세요.",
                        "The order must list each of this item's photo ids exactly once."),
    "media.not_found": ("파일을 찾을 수 없어요.", "File not found."),
    "db.unavailable": ("서비스가 잠시 응답하지 않아요. 잠시 뒤 다시 시도해 주세요.",
                       "The service is not answering right now; please try again shortly."),
    "photo.too_slow": ("사진을 받는 데 너무 오래 걸렸어요. 연결을 확인하고 다시 올려 주세요.",
                       "The photo took too long to arrive; check the connection and upload it again."),
    "storage.unavailable": ("사진 저장소에 잠시 연결할 수 없어요. 잠시 뒤 다시 시도해 주세요. 아무것도 저장되지 않았어요.",
                            "The photo store cannot be reached right now; please try again shortly. Nothing was "
                            "saved."),
    # flood limits (market.limits): {wait} reads "40초" / "12분"
    "limit.search": ("검색을 너무 자주 하고 있어요. {wait} 뒤 다시 시도해 주세요.",
                     "You are searching too often. Please try again in {wait}."),
    "limit.command": ("명령어를 너무 자주 보내고 있어요. {wait} 뒤 다시 시도해 주세요.",
                      "You are sending commands too often. Please try again in {wait}."),
    "limit.inquiry": ("짧은 시간에 너무 많은 물건에 문의했어요. {wait} 뒤 다시 문의해 주세요.",
                      "You have asked about too many items in a short time. Please ask again in {wait}."),
    "limit.sign_up": ("이 네트워크에서 가입이 너무 많이 시도됐어요. {wait} 뒤 다시 시도해 주세요.",
                      "Too many sign-ups from this network. Please try again in {wait}."),
    # chat
    "chat.unknown_room": ("없는 대화방이거나 들어갈 수 없는 대화방이에요.", "That room does not exist or is not yours."),
    "chat.own_item": ("내 물건에는 문의할 수 없어요.", "You cannot inquire about your own item."),
    "chat.too_fast": ("메시지를 너무 빨리 보내고 있어요. 잠시 뒤에 다시 보내 주세요.",
                      "You are sending messages too fast; please wait a moment."),
    "chat.bad_client_msg_id": ("메시지 식별자가 올바르지 않아요.", "The client message id is invalid."),
    "chat.bad_range": ("이전 메시지와 이후 메시지를 한 번에 요청할 수 없어요.",
                       "Ask for messages before or after a number, not both."),
    "chat.bad_event": ("요청 형식이 올바르지 않아요. {expected}", "The request is malformed. {expected}"),
    "chat.login_required": ("로그인이 필요해요. 다시 로그인해 주세요.", "Please log in again."),
    "chat.session_ended": ("로그아웃됐어요. 다시 로그인해 주세요.", "You have been logged out; please log in again."),
    "chat.session_expired": ("로그인이 만료됐어요. 다시 로그인해 주세요.", "Your session has expired; please log in again."),
    "chat.not_joined": ("먼저 대화방에 들어가 주세요.", "Join the room first."),
    "chat.bot_pending": ("버튼을 받았어요. 곧 처리할게요.", "Got it; the bot will handle this shortly."),
    # rentals
    "rental.not_found": ("대여 건을 찾을 수 없어요.", "That rental does not exist."),
    "rental.own_item": ("내 물건은 빌릴 수 없어요.", "You cannot rent your own item."),
    "rental.bad_dates": ("날짜를 알아듣지 못했어요. 예) 12/24~12/26, 내일부터 3일, 이번 주말",
                         "I could not read the dates. e.g. 12/24~12/26"),
    "rental.past_dates": ("지난 날짜는 고를 수 없어요.", "Dates in the past cannot be chosen."),
    "rental.reversed_dates": ("끝나는 날이 시작하는 날보다 빨라요.", "The end date is before the start date."),
    "rental.too_long": ("한 번에 최대 {max}일까지 빌릴 수 있어요.", "A rental can last at most {max} days."),
    "rental.too_far": ("1년 안의 날짜만 고를 수 있어요.", "Please choose dates within a year."),
    "rental.outside_availability": ("이 물건은 {start}부터 {end}까지만 빌릴 수 있어요.",
                                    "This item can be rented from {start} to {end} only."),
    "rental.dates_taken": ("그 날짜에는 이미 예약이 있어요.", "Those dates are already taken."),
    "rental.already_requested": ("이 물건에 이미 보낸 대여 요청이 있어요.", "You already have a request for this item."),
    "rental.started": ("대여 시작일이 지나서 이제 수락하거나 결제할 수 없어요. 새 날짜로 다시 요청해 주세요.",
                       "The rental's start date has passed; it can no longer be accepted or paid. Request new dates."),
    "rental.room_busy": ("이 거래방에는 아직 진행 중인 대여가 있어요. 지금 대여가 끝난 뒤에 새 날짜로 요청해 주세요.",
                         "A rental is still open in this deal room. Request new dates after it is settled."),
    "rental.too_many_requests": ("답을 기다리는 대여 요청은 {max}건까지 보낼 수 있어요.",
                                 "You can have at most {max} requests waiting."),
    "rental.wrong_state": ("지금 단계에서는 할 수 없는 일이에요.", "That cannot be done at this stage of the rental."),
    "rental.already_paid": ("이미 결제된 대여예요.", "This rental is already paid."),
    "rental.expired": ("기한이 지나 만료된 요청이에요.", "This request has expired."),
    "rental.only_owner": ("물건 주인만 할 수 있어요.", "Only the owner can do that."),
    "rental.only_borrower": ("빌리는 분만 할 수 있어요.", "Only the borrower can do that."),
    "rental.not_allowed": ("할 수 없는 일이에요.", "That is not allowed."),
    "rental.already_confirmed": ("이미 확인했어요.", "Already confirmed."),
    "rental.cancel_after_handover": ("물건을 주고받은 뒤에는 취소할 수 없어요. 반납으로 진행해 주세요.",
                                     "After the hand-over a rental cannot be cancelled; please return the item."),
    "rental.bad_claim": ("청구 금액은 1원부터 {max}원까지 입력할 수 있어요.", "A claim must be 1 to {max} won."),
    "rental.bad_resolution": ("결정 금액은 0원부터 {max}원까지예요.", "The decision must be 0 to {max} won."),
    "rental.claim_window_closed": ("반납 확인 기간({hours}시간)이 지나 청구할 수 없어요.",
                                   "The {hours}-hour inspection window has closed."),
    "rental.extension_not_later": ("연장은 지금 반납일보다 뒤 날짜로만 할 수 있어요.",
                                   "An extension must end after the current end date."),
    "rental.extension_taken": ("그 기간에는 다음 예약이 있어서 연장할 수 없어요.",
                               "The item is booked then; it cannot be extended."),
    "rental.extension_pending": ("이미 답을 기다리는 연장 요청이 있어요.", "An extension request is already waiting."),
    "rental.no_extension": ("기다리는 연장 요청이 없어요.", "There is no extension request."),
    "rental.no_appointment": ("답할 수 있는 약속 제안이 아니에요. 상대의 가장 최근 제안(아직 지나지 않은 것)에만 답할 수 있어요.",
                              "That is not a proposal you can agree to: only the other person's latest one, "
                              "still ahead."),
    "rental.bad_appointment_time": ("약속 시간은 지금 이후, 반납일({end}) 전으로 골라 주세요.",
                                    "Pick a time from now until the return date ({end})."),
    "rental.bad_place": ("만날 장소를 100자 안으로 적어 주세요. 예) 역삼역 3번 출구", "Name the place in at most 100 characters."),
    "rental.return_declared": ("반납했다고 이미 알렸어요. 주인이 확인하면 알려 드릴게요.",
                               "You already said the item is back; you will hear when the owner confirms."),
    "rental.nothing_to_object": ("이의를 제기할 확인이 없어요.", "There is nothing to object to."),
    # BilliPay
    "pay.no_link": ("빌리페이 계좌가 아직 연결되지 않았어요.", "No bank account is linked to BilliPay yet."),
    "pay.insufficient": ("잔액이 부족해서 결제되지 않았어요. 계좌 잔액을 확인해 주세요.",
                         "Payment failed: insufficient balance."),
    "pay.limit": ("이체 한도를 넘어서 결제되지 않았어요.", "Payment failed: transfer limit exceeded."),
    "pay.no_account": ("계좌를 찾을 수 없어요. 계좌를 다시 연결해 주세요.", "The account was not found; please link it again."),
    "pay.closed_account": ("해지된 계좌예요. 다른 계좌를 연결해 주세요.", "The account is closed; please link another."),
    "pay.declined": ("은행에서 결제를 거절했어요. 잠시 뒤 다시 시도해 주세요.", "The bank declined the payment."),
    "pay.relink": ("계좌 연결이 만료됐어요. 다시 연결해 주세요.", "The bank link has expired; please link again."),
    "pay.unknown": ("은행 응답이 늦어지고 있어요. 결과를 확인해서 알려 드릴게요. 다시 결제하지 않아도 돼요.",
                    "The bank is slow to answer; we will check and tell you. Do not pay again."),
    "pay.unknown_other": ("빌리는 분의 결제에 대한 은행 응답이 늦어지고 있어요. 결과가 나오면 알려 드릴게요.",
                          "The bank has not answered the borrower's payment yet; you will be told."),
    "pay.in_progress": ("결제를 처리하고 있어요. 잠시만 기다려 주세요.", "A payment is being processed; please wait."),
    "pay.unreachable": ("은행에 연결할 수 없어요. 잠시 뒤 다시 시도해 주세요.", "The bank cannot be reached right now."),
    "pay.not_configured": ("지금은 빌리페이를 쓸 수 없어요.", "BilliPay is not available right now."),
    "pay.bad_amount": ("금액이 올바르지 않아요.", "The amount is invalid."),
    "billipay.bad_state": ("계좌 연결 요청이 만료됐거나 올바르지 않아요. 처음부터 다시 연결해 주세요.",
                           "The link request is invalid or expired; please start again."),
    "billipay.bad_code": ("은행 인증에 실패했어요. 다시 연결해 주세요.", "The bank authorisation failed; please try again."),
    "billipay.not_your_link": ("이 계좌 연결 버튼은 다른 분의 것이에요. 본인 계정으로 로그인해서 눌러 주세요.",
                               "This bank-link button belongs to someone else; log in as yourself."),
    "billipay.denied": ("계좌 연결을 취소했어요.", "You cancelled the bank link."),
    "billipay.wrong_session": (
        "계좌 연결은 연결을 시작한 본인이 빌리마켓에 로그인한 상태에서만 마칠 수 있어요. 그 계정으로 로그인한 "
        "브라우저에서 빌리마켓 앱으로 돌아가 다시 시도해 주세요. 아무 계좌도 연결되지 않았어요.",
        "Only the person who started this bank link, logged in to Billi Market, can finish it. Go back to the app "
        "in a browser where you are logged in as that person and try again. No account was linked."),
    "transfer.bad_state": ("결정은 done 또는 failed 중 하나여야 해요.", "The decision must be done or failed."),
    "transfer.not_retryable": ("다시 보낼 수 있는 정산이 아니에요 (거절된 정산만, 한 번씩 다시 보낼 수 있어요).",
                               "That payout cannot be sent again (only a refused payout, once)."),
    "transfer.not_open": ("결과를 모르는 이체가 아니에요 (이미 끝났거나 없는 이체예요).",
                          "That transfer is not waiting for a decision (already settled, or no such transfer)."),
    "pay.confirm_link": ("새로 연결한 계좌예요. 결제하기 전에 계좌 정보를 확인해 주세요.",
                         "This account is newly linked; please check it before paying."),
    "pay.link_changed": ("연결된 계좌가 바뀌었어요. 바뀐 계좌를 확인하고 다시 결제해 주세요.",
                         "The linked account has changed; please check it and pay again."),
    "billipay.no_account": ("연결할 수 있는 계좌가 없어요.", "No account could be linked."),
    "billipay.unreachable": ("은행에 연결할 수 없어요. 잠시 뒤 다시 시도해 주세요.", "The bank cannot be reached right now."),
    # Naver login
    "naver.other_browser": ("네이버 로그인은 로그인을 시작한 브라우저에서만 마칠 수 있어요. 빌리마켓에서 다시 시작해 주세요.",
                            "Naver login can only be finished in the browser that started it. Please start again "
                            "from Billi Market."),
    "naver.bad_state": ("네이버 로그인 요청이 만료됐거나 올바르지 않아요. 처음부터 다시 해 주세요.",
                        "The Naver login request is invalid or expired; please start again."),
    "naver.bad_code": ("네이버 인증 코드가 만료됐거나 이미 쓰였어요. 다시 로그인해 주세요.",
                       "The Naver code expired or was already used; please log in again."),
    "naver.denied": ("네이버 로그인을 취소했어요.", "You cancelled the Naver login."),
    "naver.unreachable": ("네이버에 연결할 수 없어요. 잠시 뒤 다시 시도해 주세요.", "Naver cannot be reached right now."),
    "naver.linked_elsewhere": ("이 네이버 계정은 이미 다른 빌리마켓 계정에 연결되어 있어요.",
                               "This Naver account is already linked to another account."),
    "naver.already_linked": ("이미 다른 네이버 계정이 연결되어 있어요. 먼저 연결을 해제해 주세요.",
                             "Another Naver account is linked already; unlink it first."),
    "naver.not_linked": ("연결된 네이버 계정이 없어요.", "No Naver account is linked."),
    "naver.last_login_method": ("비밀번호가 없는 계정이라 네이버 연결을 끊으면 로그인할 수 없어요.",
                                "Without a password you could not log in after unlinking Naver."),
    "naver.not_configured": ("지금은 네이버 로그인을 쓸 수 없어요.", "Naver login is not available right now."),
    "naver.pick_nickname": ("빌리마켓에서 쓸 닉네임을 정해 주세요 (네이버 별명이 이미 쓰이고 있어요).",
                            "Choose a nickname (your Naver nickname is taken)."),
    # reviews and notifications
    "review.bad_about": ("리뷰 대상이 올바르지 않아요.", "Review owner, borrower or item."),
    "review.bad_stars": ("별점은 1부터 5까지 골라 주세요.", "Stars must be 1 to 5."),
    "review.not_your_side": ("내가 쓸 수 있는 리뷰가 아니에요.", "That review is not yours to write."),
    "review.not_settled": ("정산이 끝난 대여만 리뷰할 수 있어요.", "Only settled rentals can be reviewed."),
    "review.window_closed": ("리뷰는 정산 후 7일 안에만 쓸 수 있어요.", "Reviews close 7 days after settlement."),
    "review.already_written": ("이미 리뷰를 썼어요. 7일 안에는 고칠 수 있어요.", "Already reviewed; you can edit it."),
    "review.edit_closed": ("쓴 지 7일이 지난 리뷰는 고칠 수 없어요.", "Reviews can be edited for 7 days."),
    "review.not_found": ("리뷰를 찾을 수 없어요.", "Review not found."),
    "review.not_yours_to_reply": ("나에 대한 리뷰에만 답글을 달 수 있어요.", "You can only reply to reviews about you."),
    "review.already_replied": ("답글은 한 번만 달 수 있어요.", "You can reply only once."),
    "notify.bad_prefs": ("알림 설정은 {종류: true/false} 형태로 보내 주세요.", "Send {kind: true/false} pairs."),
    # blocking and reports (신고)
    "block.self": ("나 자신은 차단할 수 없어요.", "You cannot block yourself."),
    "block.you_blocked": ("차단한 이웃이에요. 차단을 풀면 다시 대화하고 요청할 수 있어요.",
                          "You blocked this neighbour; unblock them to talk or rent again."),
    "block.cannot_send": ("이 대화에는 더 이상 메시지를 보낼 수 없어요.", "You can no longer send messages here."),
    "block.cannot_inquire": ("이 물건에는 문의할 수 없어요.", "You cannot inquire about this item."),
    "block.cannot_request": ("이 물건은 대여를 요청할 수 없어요.", "You cannot request this item."),
    "report.self": ("나 자신이나 내 물건은 신고할 수 없어요.", "You cannot report yourself or your own item."),
    "report.bad_kind": ("신고 대상은 person(사람) 또는 item(물건)이에요.", "Report a person or an item."),
    "report.bad_reason": ("신고 사유를 골라 주세요: {reasons}", "Choose a reason: {reasons}"),
    "report.too_many": ("신고를 너무 많이 보냈어요. 내일 다시 보내 주세요.",
                        "You have sent too many reports; please try again tomorrow."),
    "report.not_found": ("열린 신고를 찾을 수 없어요.", "No open report with that number."),
    # service
    "service.not_found": ("요청한 주소를 찾을 수 없어요.", "Not found."),
    "service.method": ("이 주소에서는 쓸 수 없는 요청 방식이에요.", "Method not allowed here."),
    "service.internal": ("잠시 문제가 생겼어요. 조금 뒤에 다시 시도해 주세요.",
                         "Something went wrong on our side; please try again shortly."),
    "service.unavailable": ("지금은 서비스를 쓸 수 없어요. 잠시 뒤에 다시 시도해 주세요.",
                            "The service is unavailable right now; please try again shortly."),
    "service.body_too_large": ("요청이 너무 커요.", "The request is too large."),
    "service.csrf": ("다른 사이트에서 보낸 요청은 받을 수 없어요.", "Cross-site requests are refused."),
    "service.operator_only": ("운영자만 볼 수 있는 주소예요.", "Only the service's operators can read this."),
}

_PARTICLES = {"을": ("을", "를"), "이": ("이", "가"), "은": ("은", "는"), "과": ("과", "와"), "으로": ("으로", "로"),
              "이에요": ("이에요", "예요")}
_SLOT = re.compile(r"\{(\w+)(?:\|(을|이에요|이|은|과|으로))?\}")
# A Latin letter read aloud: those whose name ends in a consonant (엘, 엠, 엔, 알); ㄹ-final ones are "ㄹ".
_LETTER_FINAL = {"l": "ㄹ", "r": "ㄹ", "m": "ㅁ", "n": "ㄴ"}


def particle(word: str, josa: str) -> str:
    """The particle that follows ``word``: 을/를 by whether its last sound ends in a consonant — a syllable's
    final, a bare consonant (ㅁㄴㅇㄹ), a digit (201 → 이에요) or a Latin letter as read (tent → 를)."""
    with_final, without_final = _PARTICLES[josa]
    last = word.rstrip()[-1:] if word.strip() else ""
    if "가" <= last <= "힣":
        final = (ord(last) - 0xAC00) % 28
        if josa == "으로" and final == 8:  # ㄹ takes 로
            return without_final
        return with_final if final else without_final
    if "ㄱ" <= last <= "ㅎ":  # a bare consonant, read as its own sound
        return without_final if josa == "으로" and last == "ㄹ" else with_final
    if "ㅏ" <= last <= "ㅣ":
        return without_final
    if last.isdigit():
        if josa == "으로" and last in "178":  # 일, 칠, 팔 end in ㄹ
            return without_final
        return with_final if last in "013678" else without_final
    if last.isascii() and last.isalpha():
        final = _LETTER_FINAL.get(last.lower())
        return without_final if final is None or (josa == "으로" and final == "ㄹ") else with_final
    return f"{with_final}({without_final})" if josa != "으로" else "(으)로"


def label(field: str | None, locale: str = "ko") -> str:
    if not field:
        return ""
    ko, en = FIELD_LABELS.get(field, (field, field))
    return ko if locale == "ko" else en


def render(key: str, locale: str = "ko", **params: Any) -> str:
    """The sentence for ``key`` in ``locale`` (Korean when unknown) with its parameters filled in."""
    ko, en = CATALOGUE.get(key, CATALOGUE["service.internal"])
    if "field" in params and "label" not in params:
        params["label"] = label(params["field"], locale)
    return fill(en if locale == "en" else ko, locale, params)


def fill(template: str, locale: str, params: dict[str, Any]) -> str:
    """Put ``params`` into ``{name}`` / ``{name|을}`` slots: integers with thousands separators, durations in
    seconds or minutes, and in Korean the particle that fits the word before it."""
    if "{" not in template:  # (a label: a reply's cards say a dozen of them)
        return template
    out = []
    for literal, name, josa in _pieces(template):
        out.append(literal)
        if name is None:
            continue
        value = params.get(name, "")
        if isinstance(value, timedelta):
            text = duration(value, locale)
        else:
            text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
        out.append(text + particle(text, josa) if josa and locale == "ko" else text)
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _pieces(template: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """A template cut at its slots, once: (the text before a slot, the slot's name, its particle), and the text
    after the last slot with no name (a reply fills a dozen templates: matching each again was most of the work)."""
    out: list[tuple[str, str | None, str | None]] = []
    at = 0
    for m in _SLOT.finditer(template):
        out.append((template[at:m.start()], m.group(1), m.group(2)))
        at = m.end()
    out.append((template[at:], None, None))
    return tuple(out)


def duration(span: timedelta, locale: str = "ko") -> str:
    """A short wait in words: whole seconds under a minute, else minutes (both rounded up, never promising less
    than the wait)."""
    seconds = math.ceil(span.total_seconds())
    if seconds < 60:
        return f"{seconds}초" if locale == "ko" else f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes}분" if locale == "ko" else f"{minutes} minute{'s' if minutes != 1 else ''}"
